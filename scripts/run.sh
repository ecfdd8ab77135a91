#!/usr/bin/env bash
# Starts the demo upstream and gatewayd on configs/gateway.yaml (in-process
# store, built-in auth service, no Redis), prints the curl lines to try with
# gatewayd's PID, then follows the gateway's log (kept in data/gatewayd.log).
# Ctrl-C stops both.
#
# Everything listens on 127.0.0.1 (the demo has open signup). Override with
# GATEWAY_LISTEN, GATEWAY_ADMIN and DEMO_UPSTREAM (host:port each); BIN_DIR
# names the directory of the binaries (default bin, as `make build` leaves
# them); GATEWAYD_LOG the log file (default data/gatewayd.log).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN_DIR=${BIN_DIR:-bin}
export GATEWAY_LISTEN=${GATEWAY_LISTEN:-127.0.0.1:8080}
export GATEWAY_ADMIN=${GATEWAY_ADMIN:-127.0.0.1:9901}
export DEMO_UPSTREAM=${DEMO_UPSTREAM:-127.0.0.1:9002}

if [ -z "${JWT_SECRET:-}" ]; then
  JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
  echo "JWT_SECRET was not set: generated one for this run (tokens die with the process)."
fi
export JWT_SECRET
mkdir -p data
log=${GATEWAYD_LOG:-data/gatewayd.log}

demo= gw= follow=
cleanup() {
  for p in $follow $gw $demo; do kill "$p" 2>/dev/null || true; done
  # Exit only once they are gone, so nothing answers after the script ends.
  for p in $follow $gw $demo; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# Ctrl-C reaches every process of the terminal's group; gatewayd shuts down
# gracefully on it, and the script waits for that.
trap 'wait "$gw" 2>/dev/null; exit 130' INT
trap 'kill -TERM "$gw" 2>/dev/null; wait "$gw" 2>/dev/null; exit 143' TERM

: >"$log"
"$BIN_DIR/demo-upstream" -listen "$DEMO_UPSTREAM" >>"$log" 2>&1 &
demo=$!
"$BIN_DIR/gatewayd" -config configs/gateway.yaml >>"$log" 2>&1 &
gw=$!

# The banner comes once the gateway listens, so its curl lines work at once
# and the log does not run through them.
for _ in $(seq 100); do
  grep -q '"gatewayd started"' "$log" 2>/dev/null && break
  if ! kill -0 "$gw" 2>/dev/null; then
    cat "$log" >&2
    echo "gatewayd did not start; see above ($log)" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q '"gatewayd started"' "$log" || { cat "$log" >&2; echo "gatewayd did not start within 10s ($log)" >&2; exit 1; }

gwurl=$GATEWAY_LISTEN
cat <<TXT

gatewayd (pid $gw) is listening on $GATEWAY_LISTEN (admin on $GATEWAY_ADMIN), loopback
only: the demo has open signup. Its log follows below and stays in $log. Try:

  # sign up and log in (the password policy: 10+ chars, mixed character classes)
  curl -si -X POST $gwurl/v1/auth/signup -H 'Content-Type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct-Horse-42"}'
  TOKEN=\$(curl -s -X POST $gwurl/v1/auth/login -H 'Content-Type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct-Horse-42"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # a protected route: the demo upstream echoes what the gateway forwarded (X-User-ID, X-Request-ID, ...)
  curl -s $gwurl/v1/users/me -H "Authorization: Bearer \$TOKEN"
  curl -si $gwurl/v1/users/me                       # 401: no token
  curl -si $gwurl/v1/admin/stats -H "Authorization: Bearer \$TOKEN"   # 403: not an admin

  # log out: the same token is refused at once
  curl -si -X POST $gwurl/v1/auth/logout -H "Authorization: Bearer \$TOKEN"
  curl -si $gwurl/v1/users/me -H "Authorization: Bearer \$TOKEN"      # 401 token revoked

  curl -s $gwurl/public/hello                       # no plugins but request-id
  curl -s $GATEWAY_ADMIN/metrics | grep http_requests_total
  kill -HUP $gw   or   curl -X POST $GATEWAY_ADMIN/-/reload   # reload configs/gateway.yaml

TXT

tail -n +1 -f "$log" &
follow=$!
set +e
wait "$gw"
rc=$?
exit "$rc"
