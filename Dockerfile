# syntax=docker/dockerfile:1
#
# gatewayd and authd as static binaries on a distroless base.
#
#   docker build --build-arg VERSION="$(git describe --always --dirty)" -t gatewayd .
#   docker run -e JWT_SECRET="$(openssl rand -base64 48)" -p 8080:8080 -p 127.0.0.1:9901:9901 gatewayd
#
# The default configuration is deploy/docker/gateway.yaml; mount your own at
# /etc/gatewayd/gateway.yaml. Run authd from the same image with
# --entrypoint /usr/local/bin/authd. See deploy/README.md.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Modules first, so that source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# CGO_ENABLED=0: a static binary with Go's own DNS resolver, which runs on
# an image without libc. -trimpath drops the build machine's paths.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/gatewayd ./cmd/authd
# The working directory of the final image, where the embedded user store
# (auth.users_file) lives: created here because distroless has no shell.
RUN mkdir -p /out/state/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatewayd /out/authd /usr/local/bin/
COPY deploy/docker/gateway.yaml /etc/gatewayd/gateway.yaml
COPY --from=build --chown=65532:65532 /out/state /var/lib/gatewayd
WORKDIR /var/lib/gatewayd
# The numeric id of distroless' "nonroot" user: Kubernetes can only verify
# runAsNonRoot against a numeric USER.
USER 65532:65532
EXPOSE 8080 9901
# No HEALTHCHECK: distroless has no shell, curl or wget to run one, and a
# HEALTHCHECK needs a program inside the image. Orchestrators probe the admin
# listener instead: GET :9901/healthz (alive) and GET :9901/readyz (ready;
# 503 while draining). Kubernetes ignores HEALTHCHECK anyway.
ENTRYPOINT ["/usr/local/bin/gatewayd"]
CMD ["-config", "/etc/gatewayd/gateway.yaml"]
