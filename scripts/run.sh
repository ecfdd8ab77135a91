#!/usr/bin/env bash
# Starts the demo upstream and gatewayd on configs/gateway.yaml (in-process
# store, built-in auth service, no Redis). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${JWT_SECRET:-}" ]; then
  JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
  echo "JWT_SECRET was not set: generated one for this run (tokens die with the process)."
fi
export JWT_SECRET
mkdir -p data

bin/demo-upstream -listen 127.0.0.1:9002 &
demo=$!
trap 'kill $demo 2>/dev/null || true' EXIT

cat <<'TXT'

gatewayd is starting on :8080 (admin on 127.0.0.1:9901). Try:

  # sign up and log in (the password policy: 10+ chars, mixed character classes)
  curl -si -X POST localhost:8080/v1/auth/signup -H 'Content-Type: application/json' \
       -d '{"email":"ada@example.com","password":"correct-Horse-42"}'
  TOKEN=$(curl -s -X POST localhost:8080/v1/auth/login -H 'Content-Type: application/json' \
       -d '{"email":"ada@example.com","password":"correct-Horse-42"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

  # a protected route: the demo upstream echoes what the gateway forwarded (X-User-ID, X-Request-ID, ...)
  curl -s localhost:8080/v1/users/me -H "Authorization: Bearer $TOKEN"
  curl -si localhost:8080/v1/users/me                       # 401: no token
  curl -si localhost:8080/v1/admin/stats -H "Authorization: Bearer $TOKEN"   # 403: not an admin

  # log out: the same token is refused at once
  curl -si -X POST localhost:8080/v1/auth/logout -H "Authorization: Bearer $TOKEN"
  curl -si localhost:8080/v1/users/me -H "Authorization: Bearer $TOKEN"      # 401 token revoked

  curl -s localhost:8080/public/hello                       # no plugins but request-id
  curl -s 127.0.0.1:9901/metrics | grep http_requests_total
  kill -HUP <pid>   or   curl -X POST 127.0.0.1:9901/-/reload   # reload configs/gateway.yaml

TXT
bin/gatewayd -config configs/gateway.yaml
