package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const metricsConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}", pprof: %s }
log: { level: info, access_log: false }
upstreams:
  echo: { targets: ["http://%s"] }
  dead: { targets: ["http://127.0.0.1:1"], connect_timeout: 200ms }
routes:
  - name: api
    match: { path_prefix: /v1/ }
    upstream: echo
  - name: dead
    match: { path_prefix: /dead/ }
    upstream: dead
`

// TestMetricsPassPromtool lints a real scrape of the gatewayd binary's
// /metrics after traffic of every kind with promtool check metrics: every
// family has HELP and TYPE and follows the naming rules.
func TestMetricsPassPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install it to lint /metrics (Debian/Ubuntu: apt-get install -y prometheus; or download it from https://prometheus.io/download/)")
	}
	gw := gatewaytest.Start(t, fmt.Sprintf(metricsConfig, "false", startEcho(t, "echo")))
	for _, m := range []string{"GET", "POST", "HEAD", "PUT", "BREW"} {
		do(t, m, gw.URL("/v1/x"), nil, "")
	}
	do(t, "GET", gw.URL("/dead/x"), nil, "")
	do(t, "GET", gw.URL("/nothing"), nil, "")
	r := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	body := string(r.Body)
	for _, want := range []string{
		`# TYPE http_response_size_bytes histogram`,
		`http_response_size_bytes_count{route="api"} 5`,
		`gateway_upstream_requests_total{upstream="echo",code_class="2xx"} 5`,
		`gateway_upstream_requests_total{upstream="dead",code_class="error"} 1`,
		`http_request_duration_seconds_count{method="OTHER",route="api"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `method="DELETE",route="api"`) {
		t.Error("series of DELETE exported for route api, which saw none")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPprofOnAdminListenerOnly checks admin.pprof on the binary: the
// profiles are on the admin listener, and the client listener treats
// /debug/pprof/ as any other path (here: no route, 404).
func TestPprofOnAdminListenerOnly(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(metricsConfig, "true", startEcho(t, "echo")))
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if r := do(t, "GET", gw.AdminURL(p), nil, ""); r.Status != 200 || len(r.Body) == 0 {
			t.Errorf("admin %s: %d with %d bytes", p, r.Status, len(r.Body))
		}
		if r := do(t, "GET", gw.URL(p), nil, ""); r.Status != 404 || decodeError(t, r).Error != "not_found" {
			t.Errorf("client listener %s: %d %s, want the 404 JSON", p, r.Status, r.Body)
		}
	}
}
