# syntax=docker/dockerfile:1
# Agora as a small, static, non-root image. The base images are build arguments so
# that a machine without a registry can build from local images:
#   docker build --build-arg GO_IMAGE=local/golang --build-arg RUNTIME_IMAGE=scratch -t agora .
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
# Marks the (large) build stage, so its leftovers can be pruned by label.
LABEL org.agora.stage=build
WORKDIR /src
ARG GOPROXY=https://proxy.golang.org,direct
# The release is built with a patched Go whatever Go the base image has: the go command
# fetches this toolchain through GOPROXY, checked like any module (docs/security.md,
# "Supply chain"). tests/supplychain scans the code with the same version.
ARG GO_TOOLCHAIN=go1.27.3
ENV GOTOOLCHAIN=${GO_TOOLCHAIN}
COPY go.mod go.sum ./
RUN go version && go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X github.com/agora-commerce/agora/internal/app.Version=${VERSION}" \
      -o /out/agora ./cmd/agora \
 && mkdir -p /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/agora /agora
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# In a container the API must listen beyond loopback; the data dir is a volume.
ENV AGORA_DATA_DIR=/data \
    AGORA_HTTP_ADDR=0.0.0.0:8080 \
    AGORA_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/agora"]
CMD ["serve"]
