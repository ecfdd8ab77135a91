GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BINARIES := bin/gatewayd bin/authd bin/demo-upstream
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-short check tidy-check fmt bench bench-micro clean

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/gatewayd ./cmd/authd ./cmd/demo-upstream

## run: build, start the demo upstream and the gateway on the default config (no Redis needed)
run: build
	@scripts/run.sh

## test: every test (unit, integration, end-to-end) with the race detector, against real redis-server processes
test:
	@command -v redis-server >/dev/null 2>&1 || [ -n "$$REDIS_ADDR" ] || { \
		echo "make test needs redis-server (the tests start their own on free ports)."; \
		echo "  Debian/Ubuntu: sudo apt-get install -y redis-server"; \
		echo "  macOS:         brew install redis"; \
		echo "or point REDIS_ADDR=host:port at a server the tests may flush."; exit 1; }
	$(GO) test -race -count=1 -timeout 15m ./...
	cd bench && $(GO) test -race -count=1 -timeout 15m ./...

## test-short: the fast unit tests only
test-short:
	$(GO) test -short -count=1 ./...
	cd bench && $(GO) test -short -count=1 ./...

## check: go vet, gofmt and staticcheck, in both modules (the gateway's and bench/'s)
check:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	@out=$$(gofmt -l cmd pkg internal configs bench deploy e2e scripts 2>/dev/null); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

## tidy-check: fail when go mod tidy would change go.mod or go.sum of either module
tidy-check:
	$(GO) mod tidy -diff
	cd bench && $(GO) mod tidy -diff

fmt:
	gofmt -w cmd pkg internal configs bench deploy e2e scripts

## bench-micro: go test micro-benchmarks (router, plugins, proxy, gateway, whole chain) with allocation counts
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./pkg/...
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 3 ./...

## bench: the load scenarios of bench/ side by side, a few minutes (see bench/README.md);
##        BENCH_FLAGS="-duration 30s -rounds 5 -plot" for longer runs
bench: build
	@BENCH_FLAGS="$(BENCH_FLAGS)" bench/run.sh

clean:
	rm -rf bin
