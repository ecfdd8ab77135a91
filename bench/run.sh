#!/usr/bin/env bash
# Runs the load scenarios of bench/ side by side and prints the table of
# SPEC §8 budgets (see bench/README.md). Arguments, and $BENCH_FLAGS, go to
# benchrun, e.g.
#   bench/run.sh -duration 20s -rounds 5 -plot
#   BENCH_FLAGS="-scenarios direct,passthrough,chain-memory" make bench
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}

mkdir -p bin/bench
CGO_ENABLED=0 "$GO" build -trimpath -o bin/ ./cmd/gatewayd
# bench/ is its own module (bench/go.mod), built from there.
(cd bench && CGO_ENABLED=0 "$GO" build -trimpath -o ../bin/bench/ ./upstream ./fasthttp-min ./load ./soak ./cmd/benchrun ./cmd/accuracy ./wsbench)

missing=()
for tool in wrk nginx haproxy redis-server taskset; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "not installed: ${missing[*]} (the scenarios that need them are skipped;" >&2
	echo "  Debian/Ubuntu: apt-get install -y nginx haproxy wrk redis-server util-linux)" >&2
fi

args=(-gatewayd bin/gatewayd -bin bin/bench -proxy-cpu "$PROXY_CPU" -load-cpu "$LOAD_CPU")
# shellcheck disable=SC2206 # BENCH_FLAGS is a list of flags
[ -n "${BENCH_FLAGS:-}" ] && args+=(${BENCH_FLAGS})
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
	# The driver and everything it starts default to the load CPU; the
	# proxies are moved to the proxy CPU.
	exec taskset -c "$LOAD_CPU" bin/bench/benchrun "${args[@]}" "$@"
fi
exec bin/bench/benchrun "${args[@]}" "$@"
