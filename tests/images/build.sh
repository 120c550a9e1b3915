#!/usr/bin/env bash
# Prepares Docker for the integration tests on a machine with no container registry:
# starts a Docker engine if none answers (installing docker.io from Debian if needed),
# then builds, from local sources only, the images the tests use:
#   local/debian:bookworm    a minimal Debian made with debootstrap and `docker import`
#   local/postgres:15        PostgreSQL 15 on it, with an entrypoint like the official image's
#   local/golang:1.26        that Debian plus this machine's Go toolchain (builds the Dockerfile)
# and prints the environment variables that point the tests at them. Images that exist
# are kept. Usage:  eval "$(bash tests/images/build.sh)"
# Machines that can pull images need none of this: the tests default to postgres:16-alpine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { echo "images: $*" >&2; }

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends docker.io >&2
  fi
  # A dockerd that was killed leaves pid files behind, and a new one refuses to
  # start over them; remove them only when their process is gone.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      log "removing stale $pidfile"
      rm -f "$pidfile"
    fi
  done
  log "starting dockerd"
  # No iptables/NAT: containers use host networking and listen on 127.0.0.1 only.
  nohup dockerd --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
    >/tmp/agora-dockerd.log 2>&1 &
  for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /tmp/agora-dockerd.log"; exit 1; }
fi

if ! docker image inspect local/debian:bookworm >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq >&2; apt-get install -y -qq debootstrap >&2; }
  rootfs=$(mktemp -d)
  log "debootstrap bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >&2
  echo "deb http://deb.debian.org/debian-security bookworm-security main" >>"$rootfs/etc/apt/sources.list"
  tar -C "$rootfs" -c . | docker import - local/debian:bookworm >&2
  rm -rf "$rootfs"
fi

if ! docker image inspect local/postgres:15 >/dev/null 2>&1; then
  log "building local/postgres:15"
  docker build --network host -q -t local/postgres:15 "$here/postgres" >&2
fi

if ! docker image inspect local/golang:1.26 >/dev/null 2>&1; then
  log "building local/golang:1.26 from $(go env GOROOT)"
  ctx=$(mktemp -d)
  cp -a "$(go env GOROOT)" "$ctx/go"
  # The host's CA bundle, so the build can reach the module proxy the host reaches.
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  printf 'FROM local/debian:bookworm\nCOPY go /usr/local/go\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local\n' >"$ctx/Dockerfile"
  docker build --network host -q -t local/golang:1.26 "$ctx" >&2
  rm -rf "$ctx"
fi

cat <<ENV
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
export AGORA_TEST_POSTGRES_IMAGE=local/postgres:15
export AGORA_TEST_GO_IMAGE=local/golang:1.26
export AGORA_TEST_RUNTIME_IMAGE=scratch
ENV
