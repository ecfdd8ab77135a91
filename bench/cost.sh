#!/usr/bin/env bash
# Measures what one request costs each proxy, at one fixed open-loop rate
# (the same load for every proxy): CPU time per request, from the
# scheduler's own accounting (/proc/<pid>/task/*/schedstat, nanoseconds, all
# threads of the proxy), and system calls per request (strace -c -f attached
# to the proxy during a second, slower run). Then the peak resident set
# (VmHWM, nginx: master and worker) after a closed-loop run at
# $HIGH_CONNS connections, as benchrun's memory phase. The proxy runs alone on one CPU
# (taskset), the load generator, the upstream and redis-server on the other.
# CPU time per request hardly depends on what else runs on the machine,
# unlike throughput, so the figures hold on a shared host. See
# bench/README.md ("Per-request cost").
#
#   bench/cost.sh                         # every scenario, 2000 req/s for 10s
#   RATE=4000 DUR=20 bench/cost.sh passthrough fasthttp-min
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
RATE=${RATE:-2000}               # requests per second of the CPU run
DUR=${DUR:-10}                   # seconds of the CPU run
STRACE_RATE=${STRACE_RATE:-500}  # requests per second while strace is attached
STRACE_DUR=${STRACE_DUR:-5}
CONNS=${CONNS:-50}
HIGH_CONNS=${HIGH_CONNS:-256}     # closed-loop connections of the memory run
HIGH_DUR=${HIGH_DUR:-10}
USERS=${USERS:-1000}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(nginx fasthttp-min passthrough chain-memory chain-redis chain-redis-lease)

mkdir -p bin/bench
CGO_ENABLED=0 "$GO" build -trimpath -o bin/ ./cmd/gatewayd
(cd bench && CGO_ENABLED=0 "$GO" build -trimpath -o ../bin/bench/ ./upstream ./fasthttp-min ./load)

dir=$(mktemp -d /tmp/gatewayd-cost.XXXXXX)
started=()
cleanup() {
	for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# freeport prints a loopback TCP port nothing listens on.
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}

# waitport waits until something listens on port $1.
waitport() {
	for _ in $(seq 100); do
		ss -Hltn "sport = :$1" | grep -q . && return
		sleep 0.1
	done
	echo "nothing listens on :$1" >&2
	exit 1
}

# cpu_ns prints the CPU time, in ns, of process $1 and its children.
cpu_ns() {
	local sum=0 pid f
	for pid in "$1" $(pgrep -P "$1" || true); do
		for f in /proc/"$pid"/task/*/schedstat; do
			[ -r "$f" ] && sum=$((sum + $(cut -d' ' -f1 "$f")))
		done
	done
	echo "$sum"
}

# requests prints the 2xx count of a bench/load JSON result.
requests() { sed -n 's/^ *"200": \([0-9]*\).*/\1/p' "$1" | head -1; }

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
up=$(freeport)
taskset -c "$LOAD_CPU" env GOMAXPROCS=1 bin/bench/upstream -addr "127.0.0.1:$up" -size 64 >"$dir/upstream.log" 2>&1 &
started+=($!)
waitport "$up"
redis=$(freeport)
taskset -c "$LOAD_CPU" redis-server --port "$redis" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$dir" --daemonize no --loglevel warning >"$dir/redis.log" 2>&1 &
started+=($!)
waitport "$redis"

gateway_yaml() { # name port admin
	cat <<EOF
version: 1
listen: "127.0.0.1:$2"
admin: { listen: "127.0.0.1:$3" }
server: { max_connections_per_ip: 0 }
log: { level: warn, format: json, access_log: false }
$(case $1 in chain-redis*) echo "redis: { addrs: [\"127.0.0.1:$redis\"] }";; esac)
upstreams:
  bench: { targets: ["http://127.0.0.1:$up"], timeout: 10s, retries: 0 }
routes:
  - name: bench
    match: { path_prefix: /bench/ }
    upstream: bench
EOF
	case $1 in chain-*) cat <<EOF
    plugins:
      - request-id
      - jwt: { algorithms: [HS256], secret: "$secret", issuer: gatewayd-auth, audience: api,
               forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email } }
      - blacklist
      - rbac: { roles: [user, admin] }
      - ratelimit: { key: user, limit: 1000000, period: 1s, sync: $([ "$1" = chain-redis-lease ] && echo lease || echo exact) }
EOF
	esac
}

nginx_conf() { # port
	mkdir -p "$dir/nginx-tmp"
	cat <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $dir/nginx-tmp/body;
    proxy_temp_path $dir/nginx-tmp/proxy;
    keepalive_requests 1000000;
    upstream bench { server 127.0.0.1:$up; keepalive 256; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$1;
        location / { proxy_pass http://bench; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
}

# start starts scenario $1 on port $2 and prints its pid.
start() {
	local name=$1 port=$2
	case $name in
	nginx)
		nginx_conf "$port" >"$dir/nginx.conf"
		taskset -c "$PROXY_CPU" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/nginx-error.log" >"$dir/$name.log" 2>&1 &
		;;
	fasthttp-min)
		taskset -c "$PROXY_CPU" env GOMAXPROCS=1 bin/bench/fasthttp-min -addr "127.0.0.1:$port" -upstream "127.0.0.1:$up" >"$dir/$name.log" 2>&1 &
		;;
	*)
		gateway_yaml "$name" "$port" "$(freeport)" >"$dir/$name.yaml"
		taskset -c "$PROXY_CPU" env GOMAXPROCS=1 bin/gatewayd -config "$dir/$name.yaml" >"$dir/$name.log" 2>&1 &
		;;
	esac
	echo $!
}

load() { # url rate seconds json [connections]
	taskset -c "$LOAD_CPU" bin/bench/load -url "$1" -c "${5:-$CONNS}" -rate "$2" -d "${3}s" -users "$USERS" \
		-secret "$secret" -quiet -json "$4" >/dev/null 2>>"$dir/load.log"
}

# rss_kib prints the peak resident set, in KiB, of process $1 and its
# children.
rss_kib() {
	local sum=0 pid
	for pid in "$1" $(pgrep -P "$1" || true); do
		sum=$((sum + $(awk '/^VmHWM:/ {print $2}' /proc/"$pid"/status)))
	done
	echo "$sum"
}

printf '| scenario | CPU µs/request | syscalls/request | top syscalls per request | RSS MiB at %s conns (2xx share) |\n|---|--:|--:|---|--:|\n' "$HIGH_CONNS" >"$dir/table.md"
for name in "${scenarios[@]}"; do
	port=$(freeport)
	pid=$(start "$name" "$port")
	started+=("$pid")
	waitport "$port"
	url="http://127.0.0.1:$port/bench/hello"
	load "$url" "$RATE" 3 "$dir/$name-warm.json"

	c0=$(cpu_ns "$pid")
	load "$url" "$RATE" "$DUR" "$dir/$name-cpu.json"
	c1=$(cpu_ns "$pid")
	n=$(requests "$dir/$name-cpu.json")

	# strace follows every thread (-f) of the proxy (nginx: its worker).
	target=$pid
	[ "$name" = nginx ] && target=$(pgrep -P "$pid" | head -1)
	strace -c -f -q -p "$target" -o "$dir/$name-strace.txt" &
	spid=$!
	sleep 1
	load "$url" "$STRACE_RATE" "$STRACE_DUR" "$dir/$name-strace.json"
	kill -INT "$spid"
	wait "$spid" 2>/dev/null || true
	m=$(requests "$dir/$name-strace.json")
	calls=$(awk '$NF == "total" {print $4}' "$dir/$name-strace.txt")
	top=$(awk -v m="$m" '$1 ~ /^[0-9.]+$/ && $NF != "total" {printf "%s %.2f\n", $NF, $4 / m}' "$dir/$name-strace.txt" |
		sort -k2 -nr | head -5 | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')

	load "$url" 0 "$HIGH_DUR" "$dir/$name-high.json" "$HIGH_CONNS"
	rss=$(rss_kib "$pid")
	ok=$(requests "$dir/$name-high.json")
	all=$(sed -n 's/^  "requests": \([0-9]*\).*/\1/p' "$dir/$name-high.json")

	awk -v name="$name" -v c0="$c0" -v c1="$c1" -v n="$n" -v calls="$calls" -v m="$m" -v top="$top" \
		-v rss="$rss" -v ok="$ok" -v all="$all" \
		'BEGIN { printf "| %s | %.1f | %.1f | %s | %.1f (%.0f %%) |\n", name, (c1 - c0) / 1000 / n, calls / m, top, rss / 1024, 100 * ok / all }' >>"$dir/table.md"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
echo "rate $RATE req/s for ${DUR}s (CPU), $STRACE_RATE req/s for ${STRACE_DUR}s (strace), $CONNS connections, $USERS users; RSS after ${HIGH_DUR}s closed loop at $HIGH_CONNS connections; files in $dir"
cat "$dir/table.md"
