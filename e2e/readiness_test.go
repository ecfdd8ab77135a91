package e2e

import (
	"fmt"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/redistest"
)

// readinessConfig uses Redis; %s adds plugins to the route and admin keys.
const readinessConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}"%s }
log: { level: info, access_log: false }
redis: { addrs: ["%s"] }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: open
    match: { path_prefix: /open/ }
    upstream: echo
    plugins:
      - ratelimit: { key: ip, limit: 100, period: 1m }
%s`

// TestReadinessFollowsStoreErrorPolicy: with Redis down, /readyz stays 200
// while every plugin of the live configuration fails open, and turns 503
// once a reload brings in one that fails closed, or
// admin.readiness_requires_store.
func TestReadinessFollowsStoreErrorPolicy(t *testing.T) {
	rs := redistest.Start(t)
	rs.RequireOwned(t)
	up := startEcho(t, "echo")
	failOpen := fmt.Sprintf(readinessConfig, "", rs.Addr(), up, "")
	gw := gatewaytest.Start(t, failOpen, gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	rs.Kill()

	readyz := func() int { return do(t, "GET", gw.AdminURL("/readyz"), nil, "").Status }
	if got := readyz(); got != 200 {
		t.Fatalf("/readyz with Redis down and only fail-open plugins: %d", got)
	}
	if r := do(t, "GET", gw.URL("/open/x"), nil, ""); r.Status != 200 {
		t.Fatalf("fail-open route with Redis down: %d", r.Status)
	}

	tests := []struct {
		name string
		give string
	}{
		{"blacklist fails closed by default", fmt.Sprintf(readinessConfig, "", rs.Addr(), up, `  - name: closed
    match: { path_prefix: /closed/ }
    upstream: echo
    plugins:
      - jwt: { secret: "${JWT_SECRET}" }
      - blacklist: {}
`)},
		{"ratelimit with on_store_error deny", fmt.Sprintf(readinessConfig, "", rs.Addr(), up, `  - name: closed
    match: { path_prefix: /closed/ }
    upstream: echo
    plugins:
      - ratelimit: { key: ip, limit: 5, period: 1m, on_store_error: deny }
`)},
		{"admin.readiness_requires_store", fmt.Sprintf(readinessConfig, ", readiness_requires_store: true", rs.Addr(), up, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw.WriteConfig(tt.give)
			if status, body := reload(t, gw); status != 200 {
				t.Fatalf("reload: %d %s", status, body)
			}
			if got := readyz(); got != 503 {
				t.Fatalf("/readyz with Redis down: %d, want 503", got)
			}
			// Back to fail-open only: ready again, per generation.
			gw.WriteConfig(failOpen)
			if status, body := reload(t, gw); status != 200 {
				t.Fatalf("reload: %d %s", status, body)
			}
			if got := readyz(); got != 200 {
				t.Fatalf("/readyz after reloading fail-open plugins only: %d, want 200", got)
			}
		})
	}
}
