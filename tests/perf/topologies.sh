#!/usr/bin/env bash
# tests/perf/topologies.sh measures what splitting Agora into services costs: the
# load generator's checkout throughput and POST-to-confirmed latency against
#   (1) single: one `agora serve` with every module and the in-process bus, and
#   (2) split:  `agora broker` plus one `agora serve` per module (AGORA_MODULES=<m>,
#               AGORA_BUS_URL=nats://…), every message between modules over NATS,
# in one run, with the same load (rate, duration, customers, seed). The targets
# (docs/performance.md, issue 6): split throughput >= 60% of single's, and split p50
# POST→confirmed <= 2x single's.
#
# What it does: builds agora into a temporary directory; for each topology, starts
# it on a fresh data dir (SQLite, demo catalog) on 127.0.0.1 free ports with
# AGORA_LOG_LEVEL=warn and sign-in rate limits lifted, waits for /readyz, runs
# `agora loadgen --json` against it, and stops everything it started. The split's
# load goes to every process in turn (ENTRY=all, as a load balancer would send it)
# or to the orders process only (ENTRY=orders). Then it prints both reports side
# by side and the ratios. It only ever talks to 127.0.0.1.
#
# Usage: tests/perf/topologies.sh     (about 2 minutes with the defaults)
# Settings (environment): RATE=150 (checkouts/s) DURATION=20s CUSTOMERS=150
#   BROWSE_RATE=0 SEED=1 ENTRY=all (or orders) KEEP=0 (1: keep the temp dir, with
#   every process's log and both JSON reports) LOADGEN_ARGS="" (more loadgen flags)
# Needs: go, curl, jq.
set -euo pipefail

RATE=${RATE:-150}
DURATION=${DURATION:-20s}
CUSTOMERS=${CUSTOMERS:-150}
BROWSE_RATE=${BROWSE_RATE:-0}
SEED=${SEED:-1}
ENTRY=${ENTRY:-all}
KEEP=${KEEP:-0}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
MODULES=(identity catalog inventory payments orders notifications)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HOST=127.0.0.1

die() { echo "topologies.sh: $*" >&2; exit 1; }
for tool in go curl jq; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
[[ $ENTRY == all || $ENTRY == orders ]] || die "ENTRY must be all or orders"

# The caller's AGORA_* settings must not leak into the measured processes.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^AGORA_' || true)

WORK=$(mktemp -d /tmp/agora-topologies.XXXXXX)
PIDS=() NAMES=()
HZ=$(getconf CLK_TCK)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	if [[ $KEEP == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_all sends SIGTERM to every process this script started (newest first, so
# the broker goes last) and waits for each, SIGKILL after 20 s.
stop_all() {
	local i pid n
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for ((n = 0; n < 200; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=() NAMES=()
}

free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	die "no free port found"
}

# wait_ready PORT PID LOG polls /readyz until it answers 200.
wait_ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		curl -fsS -o /dev/null "http://$HOST:$1/readyz" 2>/dev/null && return
		kill -0 "$2" 2>/dev/null || die "process exited during start; log: $(tail -n 5 "$3")"
		sleep 0.05
	done
	die "not ready on port $1 after 30 s; log: $(tail -n 5 "$3")"
}

# serve NAME DATA_DIR [KEY=VALUE…] starts `agora serve --demo` and sets PORT.
serve() {
	local name=$1 data=$2
	shift 2
	PORT=$(free_port)
	env AGORA_DATA_DIR="$data" AGORA_HTTP_ADDR="$HOST:$PORT" AGORA_LOG_LEVEL=warn AGORA_LOG_FORMAT=json \
		AGORA_AUTH_PER_IP_PER_MINUTE=100000 "$@" \
		"$WORK/agora" serve --demo >>"$WORK/$name.log" 2>&1 &
	PIDS+=($!) NAMES+=("$name")
	wait_ready "$PORT" $! "$WORK/$name.log"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# loadgen NAME URLS runs the load generator and writes its JSON report to
# $WORK/NAME.json (progress to $WORK/loadgen-NAME.log), then prints the CPU time
# each server process used during it (warm-up included).
loadgen() {
	local i before=() cpu=() total=0
	echo "== $1: loadgen --rate $RATE --duration $DURATION --customers $CUSTOMERS --browse-rate $BROWSE_RATE against $2"
	for i in "${!PIDS[@]}"; do before[i]=$(cpu_ticks "${PIDS[i]}"); done
	# shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
	"$WORK/agora" loadgen --url "$2" --rate "$RATE" --duration "$DURATION" --customers "$CUSTOMERS" \
		--browse-rate "$BROWSE_RATE" --seed "$SEED" --json $LOADGEN_ARGS \
		>"$WORK/$1.json" 2>"$WORK/loadgen-$1.log" || die "loadgen against $1 failed: $(tail -n 5 "$WORK/loadgen-$1.log")"
	for i in "${!PIDS[@]}"; do
		cpu+=("${NAMES[i]} $(awk -v t=$(($(cpu_ticks "${PIDS[i]}") - before[i])) -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}')s")
		total=$((total + $(cpu_ticks "${PIDS[i]}") - before[i]))
	done
	CPU[$1]="$(awk -v t=$total -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}') CPU-s (${cpu[*]})"
	echo "   server CPU during the load: ${CPU[$1]}"
}
declare -A CPU

echo "== building agora into $WORK ($(nproc) CPUs, $(go env GOVERSION))"
(cd "$ROOT" && go build -o "$WORK/agora" ./cmd/agora)

# --- (1) the single binary ------------------------------------------------------------
serve single "$WORK/single"
loadgen single "http://$HOST:$PORT"
stop_all

# --- (2) split: the broker and one process per module -------------------------------
BPORT=$(free_port)
"$WORK/agora" broker --broker-addr "$HOST:$BPORT" --data-dir "$WORK/split" --log-level warn --log-format json \
	>>"$WORK/broker.log" 2>&1 &
PIDS+=($!) NAMES+=(broker)
for ((i = 0; i < 200; i++)); do
	(exec 3<>"/dev/tcp/$HOST/$BPORT") 2>/dev/null && break
	kill -0 "${PIDS[-1]}" 2>/dev/null || die "broker exited: $(tail -n 5 "$WORK/broker.log")"
	sleep 0.05
done
URLS=()
ORDERS_URL=""
# One after the other, identity first: it generates the development signing key
# in the shared data dir (SQLite files are per module), which the others read.
for m in "${MODULES[@]}"; do
	serve "split-$m" "$WORK/split" AGORA_MODULES="$m" AGORA_BUS_URL="nats://$HOST:$BPORT"
	URLS+=("http://$HOST:$PORT")
	[[ $m == orders ]] && ORDERS_URL="http://$HOST:$PORT"
done
if [[ $ENTRY == orders ]]; then SPLIT_URLS=$ORDERS_URL; else SPLIT_URLS=$(IFS=,; echo "${URLS[*]}"); fi
loadgen split "$SPLIT_URLS"
stop_all

# --- both reports, side by side, and the ratios -------------------------------------
S=$WORK/single.json P=$WORK/split.json
row() { printf '%-40s %14s %14s\n' "$1" "$(jq -r "$2" "$S")" "$(jq -r "$2" "$P")"; }
echo
echo "== reports (rate $RATE/s, $DURATION, $CUSTOMERS customers, browse $BROWSE_RATE, seed $SEED; split entry: $ENTRY)"
printf '%-40s %14s %14s\n' "" single split
row "checkouts launched" '.checkouts.launched'
row "  dropped (no room / no customer)" '"\(.checkouts.dropped) / \(.checkouts.dropped_no_customer)"'
row "  confirmed" '.checkouts.confirmed'
row "  rejected" '.checkouts.rejected'
row "  failed / timed out / interrupted" '"\(.checkouts.failed) / \(.checkouts.timed_out) / \(.checkouts.interrupted)"'
row "launched per second" '.throughput.launched_per_second | .*10|round/10'
row "completed per second" '.throughput.completed_per_second | .*10|round/10'
row "confirmed per second" '.throughput.confirmed_per_second | .*10|round/10'
for q in p50 p90 p99 max; do
	row "POST→confirmed $q (ms)" ".checkout_latency_ms.confirmed.$q // \"-\""
done
row "POST /v1/orders p50 / p99 (ms)" '"\(.operations.place_order.latency_ms.p50) / \(.operations.place_order.latency_ms.p99)"'
row "PUT /v1/cart/items p50 / p99 (ms)" '"\(.operations.put_cart_item.latency_ms.p50) / \(.operations.put_cart_item.latency_ms.p99)"'
row "HTTP errors" '.errors_total'
for f in "$S" "$P"; do
	if [[ $(jq '.errors | length' "$f") != 0 ]]; then
		echo "errors in $(basename "$f" .json): $(jq -c '[.errors[] | {operation, status, count, example}]' "$f")"
	fi
done

ratio() { jq -n --slurpfile s "$S" --slurpfile p "$P" "(\$s[0] | $1) as \$a | (\$p[0] | $1) as \$b | if \$a > 0 then \$b / \$a * 100 | round else \"n/a\" end"; }
THR=$(ratio '.throughput.completed_per_second')
LAT=$(jq -n --slurpfile s "$S" --slurpfile p "$P" \
	'if ($s[0].checkout_latency_ms.confirmed.p50 // 0) > 0 then ($p[0].checkout_latency_ms.confirmed.p50 / $s[0].checkout_latency_ms.confirmed.p50 * 100 | round) / 100 else "n/a" end')
echo
echo "== split / single"
printf '%-40s %14s   %s\n' "completed checkouts per second" "$THR%" "target >= 60%"
printf '%-40s %14s   %s\n' "p50 POST→confirmed" "${LAT}x" "target <= 2x"
echo "server CPU during the load: single ${CPU[single]}; split ${CPU[split]}"
if [[ $(jq '.checkouts.dropped + .checkouts.dropped_no_customer' "$P") != 0 ]]; then
	echo "note: the split dropped launches (checkouts in flight reached --max-in-flight): it did not keep up with $RATE/s, and its latency is mostly queueing"
fi
if [[ $(jq '.checkouts.dropped + .checkouts.dropped_no_customer' "$S") == 0 ]]; then
	echo "note: the single binary dropped no launch, so it kept up with $RATE/s: the throughput ratio shows whether the split keeps up at this rate, not the single binary's ceiling (raise RATE to find it)"
fi
