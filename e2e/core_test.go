package e2e

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const coreConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  max_request_body_bytes: 1KiB
  max_request_header_bytes: 4KiB
  shutdown_timeout: 10s
  trusted_proxies: [%s]
log: { level: info, access_log: true }
upstreams:
  echo: { targets: ["http://%[2]s"] }
  slow: { targets: ["http://%[2]s"], timeout: 300ms }
  dead: { targets: ["http://127.0.0.1:1"], connect_timeout: 200ms }
routes:
  - name: only-get
    match: { path: /only, methods: [GET] }
    upstream: echo
  - name: api
    match: { path_prefix: /v1/ }
    upstream: echo
    plugins: [request-id]
  - name: admin
    match: { path_prefix: /v1/admin }
    upstream: echo
    plugins: [request-id]
  - name: strip
    match: { path_prefix: /strip/ }
    strip_prefix: true
    upstream: echo
  - name: slow
    match: { path_prefix: /slow/ }
    upstream: slow
  - name: long
    match: { path_prefix: /long/ }
    upstream: echo
  - name: dead
    match: { path_prefix: /dead/ }
    upstream: dead
`

func startCore(t *testing.T, trusted string) (*gatewaytest.Process, string) {
	echoAddr := startEcho(t, "echo")
	return gatewaytest.Start(t, fmt.Sprintf(coreConfig, trusted, echoAddr)), echoAddr
}

func TestRoutingAndNormalisation(t *testing.T) {
	gw, _ := startCore(t, "")
	tests := []struct {
		give      string
		wantPath  string
		wantRoute string
	}{
		{give: "/v1/users/1", wantPath: "/v1/users/1"},
		{give: "/v1/admin/../admin/x", wantPath: "/v1/admin/x"},
		{give: "//v1/admin", wantPath: "/v1/admin"},
		{give: "/v1/%61dmin", wantPath: "/v1/admin"},
		{give: "/v1/admin%2f..", wantPath: "/v1/"},
		{give: "/v1/adminx", wantPath: "/v1/adminx"},
		{give: "/strip/a/b?q=1", wantPath: "/a/b"},
		{give: "/strip/", wantPath: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			// net/http would clean some of these paths itself: send raw.
			status, body, _ := rawRequest(t, gw.Addr, "GET "+tt.give+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(status, "200") {
				t.Fatalf("status %s: %s", status, body)
			}
			m := regexp.MustCompile(`"path": "([^"]*)"`).FindStringSubmatch(body)
			if m == nil || m[1] != tt.wantPath {
				t.Fatalf("upstream path = %v, want %q\n%s", m, tt.wantPath, body)
			}
		})
	}
	// The query string survives.
	e := decodeEcho(t, do(t, "GET", gw.URL("/strip/q?a=1&b=2"), nil, ""))
	if e.Query != "a=1&b=2" {
		t.Fatalf("query = %q", e.Query)
	}
}

func TestErrorBodies(t *testing.T) {
	gw, _ := startCore(t, "")
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		hdr        map[string]string
		wantStatus int
		wantCode   string
	}{
		{name: "not found", method: "GET", path: "/nothing", wantStatus: 404, wantCode: "not_found"},
		{name: "method not allowed", method: "POST", path: "/only", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "payload too large", method: "POST", path: "/v1/x", body: strings.Repeat("a", 2048), wantStatus: 413, wantCode: "payload_too_large"},
		{name: "header too large", method: "GET", path: "/v1/x", hdr: map[string]string{"X-Big": strings.Repeat("b", 6000)}, wantStatus: 431, wantCode: "header_too_large"},
		{name: "bad gateway", method: "GET", path: "/dead/x", wantStatus: 502, wantCode: "bad_gateway"},
		{name: "gateway timeout", method: "GET", path: "/slow/x?sleep=1s", wantStatus: 504, wantCode: "gateway_timeout"},
		{name: "bad path", method: "GET", path: "/v1/%zz", wantStatus: 400, wantCode: "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r response
			if tt.name == "bad path" {
				status, body, _ := rawRequest(t, gw.Addr, "GET /v1/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if !strings.HasPrefix(status, "400") || !strings.Contains(body, `"error":"bad_request"`) || !strings.Contains(body, `"request_id":"`) {
					t.Fatalf("got %s %s", status, body)
				}
				return
			}
			r = do(t, tt.method, gw.URL(tt.path), tt.hdr, tt.body)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			e := decodeError(t, r)
			if e.Error != tt.wantCode {
				t.Fatalf("code = %q, want %q", e.Error, tt.wantCode)
			}
			if tt.wantStatus == 405 && r.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("Allow = %q", r.Header.Get("Allow"))
			}
			if strings.Contains(string(r.Body), "fasthttp") || strings.Contains(string(r.Body), "dial") {
				t.Fatalf("error body leaks internals: %s", r.Body)
			}
		})
	}
}

func TestHopByHopAndIdentityHeaders(t *testing.T) {
	gw, _ := startCore(t, "")
	raw := "GET /v1/h HTTP/1.1\r\nHost: example.test\r\n" +
		"Connection: keep-alive, X-Secret, X-Request-ID\r\n" +
		"X-Secret: drop-me\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\n" +
		"TE: trailers\r\nUpgrade: h2c\r\nX-User-ID: admin\r\nX-User-Role: admin\r\nX-Keep: yes\r\n\r\n"
	status, body, _ := rawRequest(t, gw.Addr, raw)
	if !strings.HasPrefix(status, "200") {
		t.Fatalf("%s %s", status, body)
	}
	for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade", "X-User-Id", "X-User-Role"} {
		if strings.Contains(body, `"`+h+`"`) {
			t.Errorf("upstream received %s:\n%s", h, body)
		}
	}
	if !strings.Contains(body, `"X-Keep"`) {
		t.Errorf("an end-to-end header was dropped:\n%s", body)
	}
	// The gateway's own X-Request-ID survives a client naming it in Connection.
	if !strings.Contains(body, `"X-Request-Id"`) {
		t.Errorf("request id dropped because the client named it in Connection:\n%s", body)
	}
}

func TestForwardedHeaders(t *testing.T) {
	t.Run("untrusted client", func(t *testing.T) {
		gw, _ := startCore(t, "")
		e := decodeEcho(t, do(t, "GET", gw.URL("/v1/x"), map[string]string{
			"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil", "Host": "api.example.com"}, ""))
		if got := header(e, "X-Forwarded-For"); got != "127.0.0.1" {
			t.Fatalf("XFF = %q", got)
		}
		if got := header(e, "X-Forwarded-Proto"); got != "http" {
			t.Fatalf("XFP = %q", got)
		}
		if got := header(e, "X-Forwarded-Host"); got != "api.example.com" {
			t.Fatalf("XFH = %q", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		gw, _ := startCore(t, `"127.0.0.1/32"`)
		e := decodeEcho(t, do(t, "GET", gw.URL("/v1/x"), map[string]string{
			"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https"}, ""))
		if got := header(e, "X-Forwarded-For"); got != "1.2.3.4, 127.0.0.1" {
			t.Fatalf("XFF = %q", got)
		}
		if got := header(e, "X-Forwarded-Proto"); got != "https" {
			t.Fatalf("XFP = %q", got)
		}
	})
}

func TestRequestID(t *testing.T) {
	gw, _ := startCore(t, "")
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name string
		give string
		keep bool
	}{
		{name: "kept", give: "abc-123:x.y_z", keep: true},
		{name: "replaced when invalid", give: "bad id!"},
		{name: "replaced when too long", give: strings.Repeat("a", 129)},
		{name: "generated", give: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.give != "" {
				hdr["X-Request-ID"] = tt.give
			}
			r := do(t, "GET", gw.URL("/v1/rid"), hdr, "")
			e := decodeEcho(t, r)
			got := r.Header.Get("X-Request-ID")
			if up := header(e, "X-Request-ID"); up != got {
				t.Fatalf("upstream saw %q, client got %q", up, got)
			}
			if tt.keep && got != tt.give {
				t.Fatalf("id = %q, want %q", got, tt.give)
			}
			if !tt.keep && !uuidRe.MatchString(got) {
				t.Fatalf("id = %q, want a UUID", got)
			}
		})
	}
	// Error bodies carry the id too, and the access log has it.
	r := do(t, "GET", gw.URL("/nothing"), map[string]string{"X-Request-ID": "trace-me-42"}, "")
	if e := decodeError(t, r); e.RequestID != "trace-me-42" {
		t.Fatalf("error body request_id = %q", e.RequestID)
	}
	if !gw.WaitLog(`"request_id":"trace-me-42"`, 2*time.Second) {
		t.Fatalf("access log lacks the request id:\n%s", gw.Logs())
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	gw, _ := startCore(t, "")
	for i := 0; i < 3; i++ {
		do(t, "GET", gw.URL("/v1/m"), nil, "")
	}
	do(t, "GET", gw.URL("/nothing"), nil, "")
	do(t, "GET", gw.URL("/dead/x"), nil, "")
	r := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	body := string(r.Body)
	for _, want := range []string{
		`http_requests_total{method="GET",route="api",status_code="200"} 3`,
		`http_requests_total{method="GET",route="unmatched",status_code="404"} 1`,
		`http_requests_total{method="GET",route="dead",status_code="502"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="api",le="0.005"}`,
		`http_request_duration_seconds_count{method="GET",route="api"} 3`,
		`gateway_upstream_duration_seconds_count{upstream="echo"} 3`,
		`gateway_inflight_requests 0`,
		`gateway_build_info{version="dev"} 1`,
		`gateway_config_last_reload_success_timestamp_seconds`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, `route="/`) {
		t.Error("a raw path leaked into a route label")
	}
	if t.Failed() {
		t.Log(body)
	}
	if r := do(t, "GET", gw.AdminURL("/nope"), nil, ""); r.Status != 404 || decodeError(t, r).Error != "not_found" {
		t.Fatalf("admin 404: %d %s", r.Status, r.Body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := do(t, "GET", gw.AdminURL(p), nil, ""); r.Status != 200 {
			t.Fatalf("%s = %d", p, r.Status)
		}
	}
}

func TestSmugglingRejected(t *testing.T) {
	gw, _ := startCore(t, "")
	tests := []struct {
		name string
		give string
	}{
		{name: "content-length and transfer-encoding", give: "POST /v1/s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "differing content-lengths", give: "POST /v1/s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"},
		{name: "obfuscated transfer-encoding", give: "POST /v1/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
		{name: "transfer-encoding list", give: "POST /v1/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, closed := rawRequest(t, gw.Addr, tt.give)
			if !strings.HasPrefix(status, "400") {
				t.Fatalf("status %s: %s", status, body)
			}
			if !closed {
				t.Fatal("connection left open after a smuggling attempt")
			}
		})
	}
}

func TestGracefulShutdownFinishesInflight(t *testing.T) {
	gw, _ := startCore(t, "")
	var wg sync.WaitGroup
	results := make([]int, 5)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(gw.URL("/long/x?sleep=1500ms"))
			if err != nil {
				results[i] = -1
				return
			}
			resp.Body.Close()
			results[i] = resp.StatusCode
		}(i)
	}
	time.Sleep(400 * time.Millisecond)
	gw.Signal(syscall.SIGTERM)
	// Readiness flips and new connections are refused once draining.
	deadline := time.Now().Add(3 * time.Second)
	refused := false
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", gw.Addr, 200*time.Millisecond)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	for i, s := range results {
		if s != 200 {
			t.Fatalf("in-flight request %d ended with %d", i, s)
		}
	}
	code, err := gw.Wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("exit code %d, %v\n%s", code, err, gw.Logs())
	}
	if !refused {
		t.Fatal("the listener still accepted connections while draining")
	}
	if !strings.Contains(gw.Logs(), "shutdown complete") {
		t.Fatalf("no shutdown log:\n%s", gw.Logs())
	}
}
