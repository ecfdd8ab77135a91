package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Body sizes the sizing upstream answers with.
const (
	smallBody   = 100
	streamedLen = 200_000 // over the 64 KiB the proxy buffers: streamed
	chunkedLen  = 150_000 // no Content-Length, streamed in chunks
)

// sizingUpstream serves /small (100 bytes), /big (200 000 bytes with a
// Content-Length), /chunked (150 000 bytes, chunked), /fail (503) and
// /empty (204) on a loopback port.
func sizingUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Logger: discardLog{}, Handler: func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/small":
			ctx.SetBody(make([]byte, smallBody))
		case "/big":
			ctx.SetBody(make([]byte, streamedLen))
		case "/chunked":
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				chunk := make([]byte, chunkedLen/10)
				for range 10 {
					_, _ = w.Write(chunk)
					_ = w.Flush()
				}
			})
		case "/fail":
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("down")
		case "/empty":
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		default:
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// metricsGateway is a gateway serving a configuration file on loopback
// client and admin listeners.
type metricsGateway struct {
	gw     *Gateway
	file   string
	client string // host:port of the client listener
	admin  string // host:port of the admin listener
}

// startMetricsGateway serves yaml (written to a file, for reloads) on the
// in-process store with client and admin listeners on loopback ports.
func startMetricsGateway(t *testing.T, yaml string) *metricsGateway {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gw.Serve(ln, adminLn) }()
	t.Cleanup(func() { _ = gw.Shutdown(0, 5*time.Second) })
	return &metricsGateway{gw: gw, file: file, client: ln.Addr().String(), admin: adminLn.Addr().String()}
}

// reload writes yaml to the configuration file and reloads it.
func (m *metricsGateway) reload(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(m.file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.gw.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// get sends a GET (or HEAD) to addr and returns the status and the body
// length read.
func get(t *testing.T, method, addr, path string) (int, int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 40 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, len(body), string(body)
}

// scrape returns the admin listener's /metrics.
func (m *metricsGateway) scrape(t *testing.T) string {
	t.Helper()
	status, _, body := get(t, "GET", m.admin, "/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	return body
}

// waitMetrics polls /metrics until every line of want is in it.
func (m *metricsGateway) waitMetrics(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := m.scrape(t)
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", missing, grepLines(out, "route=", "upstream="))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// grepLines returns the lines of text containing any of subs.
func grepLines(text string, subs ...string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		for _, s := range subs {
			if strings.Contains(l, s) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}

// sizingConfig routes /s/ to the sizing upstream (route sized, upstream
// sized-up) and /dead/ to a port nothing listens on (route dead, upstream
// dead-up). Metrics are process-wide: each test passes its own prefix for
// these names.
func sizingConfig(prefix, upstream string) string {
	return strings.ReplaceAll(`
log: { access_log: false }
upstreams:
  PFX-sized-up: { targets: ["http://`+upstream+`"] }
  PFX-dead-up: { targets: ["http://127.0.0.1:1"], connect_timeout: 200ms }
routes:
  - name: PFX-sized
    match: { path_prefix: /s/ }
    strip_prefix: true
    upstream: PFX-sized-up
  - name: PFX-dead
    match: { path_prefix: /dead/ }
    upstream: PFX-dead-up
`, "PFX", prefix)
}

func TestUpstreamAndResponseSizeMetrics(t *testing.T) {
	m := startMetricsGateway(t, sizingConfig("size", sizingUpstream(t)))
	want := 0
	for _, tt := range []struct {
		giveMethod string
		givePath   string
		wantStatus int
		wantLen    int
	}{
		{"GET", "/s/small", 200, smallBody},
		{"GET", "/s/small", 200, smallBody},
		{"GET", "/s/big", 200, streamedLen},
		{"GET", "/s/chunked", 200, chunkedLen},
		{"HEAD", "/s/small", 200, 0},
		{"GET", "/s/empty", 204, 0},
		{"GET", "/s/fail", 503, 4},
	} {
		status, n, _ := get(t, tt.giveMethod, m.client, tt.givePath)
		if status != tt.wantStatus || n != tt.wantLen {
			t.Fatalf("%s %s: %d with %d bytes, want %d with %d", tt.giveMethod, tt.givePath, status, n, tt.wantStatus, tt.wantLen)
		}
		want += tt.wantLen
	}
	if status, _, _ := get(t, "GET", m.client, "/dead/x"); status != 502 {
		t.Fatalf("dead upstream: %d, want 502", status)
	}
	_, notFoundLen, _ := get(t, "GET", m.client, "/nowhere")

	out := m.waitMetrics(t,
		`http_response_size_bytes_count{route="size-sized"} 7`,
		`http_response_size_bytes_sum{route="size-sized"} `+strconv.Itoa(want),
		// Two buffered 100-byte bodies, HEAD, 204 and the 503's 4 bytes.
		`http_response_size_bytes_bucket{route="size-sized",le="256"} 5`,
		`http_response_size_bytes_bucket{route="size-sized",le="262144"} 7`,
		`http_response_size_bytes_count{route="unmatched"} `,
		`gateway_upstream_requests_total{upstream="size-sized-up",code_class="2xx"} 6`,
		`gateway_upstream_requests_total{upstream="size-sized-up",code_class="5xx"} 1`,
		`gateway_upstream_requests_total{upstream="size-sized-up",code_class="error"} 0`,
		`gateway_upstream_requests_total{upstream="size-dead-up",code_class="error"} 1`,
		`gateway_upstream_requests_total{upstream="size-dead-up",code_class="2xx"} 0`,
		`http_request_duration_seconds_count{method="HEAD",route="size-sized"} 1`,
	)
	if notFoundLen == 0 || !strings.Contains(out, `http_response_size_bytes_sum{route="unmatched"}`) {
		t.Errorf("the 404's %d bytes are not counted under route=\"unmatched\"", notFoundLen)
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"} {
		if strings.Contains(out, `{method="`+method+`",route="size-sized"`) {
			t.Errorf("series of %s exported for route sized, which saw none", method)
		}
	}
}

func TestMetricsFollowReload(t *testing.T) {
	up := sizingUpstream(t)
	m := startMetricsGateway(t, sizingConfig("rl", up))
	get(t, "GET", m.client, "/s/small")
	get(t, "GET", m.client, "/dead/x")
	m.waitMetrics(t, `http_requests_total{method="GET",route="rl-dead",status_code="502"} 1`,
		`gateway_upstream_requests_total{upstream="rl-dead-up",code_class="error"} 1`)

	// Route rl-dead and upstream rl-dead-up removed, route rl-fresh added.
	m.reload(t, `
log: { access_log: false }
upstreams:
  rl-sized-up: { targets: ["http://`+up+`"] }
routes:
  - name: rl-sized
    match: { path_prefix: /s/ }
    strip_prefix: true
    upstream: rl-sized-up
  - name: rl-fresh
    match: { path_prefix: /f/ }
    strip_prefix: true
    upstream: rl-sized-up
`)
	get(t, "GET", m.client, "/f/small")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := m.scrape(t)
		stale := grepLines(out, `route="rl-dead"`, `upstream="rl-dead-up"`)
		if stale == "" {
			for _, want := range []string{
				`http_requests_total{method="GET",route="rl-sized",status_code="200"} 1`,
				`http_requests_total{method="GET",route="rl-fresh",status_code="200"} 1`,
				`http_response_size_bytes_sum{route="rl-fresh"} 100`,
				`gateway_upstream_requests_total{upstream="rl-sized-up",code_class="2xx"} 2`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("after the reload /metrics lacks %s", want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("series of the removed route and upstream still exported after the reload:\n%s", stale)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A failed reload naming new routes leaves no series of them behind.
	if err := os.WriteFile(m.file, []byte(sizingConfig("rl-failed", up)+"    plugins: [no-such-plugin]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.gw.Reload(); err == nil {
		t.Fatal("reload of a configuration naming an unknown plugin succeeded")
	}
	if stale := grepLines(m.scrape(t), `"rl-failed-`); stale != "" {
		t.Errorf("series of a rejected configuration exported:\n%s", stale)
	}

	// Added back: exported again, from zero.
	m.reload(t, sizingConfig("rl", up))
	get(t, "GET", m.client, "/dead/x")
	m.waitMetrics(t, `http_requests_total{method="GET",route="rl-dead",status_code="502"} 1`,
		`gateway_upstream_requests_total{upstream="rl-dead-up",code_class="error"} 1`)

	// A target moved: the old target's health series goes, the upstream's
	// other series continue.
	moved := strings.Replace(sizingConfig("rl", up), `"http://127.0.0.1:1"`, `"http://127.0.0.1:2"`, 1)
	m.reload(t, moved)
	get(t, "GET", m.client, "/dead/x")
	deadline = time.Now().Add(5 * time.Second)
	for {
		out := m.scrape(t)
		if grepLines(out, `upstream="rl-dead-up",target="http://127.0.0.1:1"`) == "" {
			for _, want := range []string{
				`gateway_upstream_target_healthy{upstream="rl-dead-up",target="http://127.0.0.1:2"} `,
				`gateway_upstream_requests_total{upstream="rl-dead-up",code_class="error"} 2`,
			} {
				if !strings.Contains(out, want) {
					t.Errorf("after moving a target /metrics lacks %s", want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the moved target's series is still exported:\n%s", grepLines(out, "rl-dead-up"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPromtoolAcceptsAdminMetrics(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install it to lint /metrics (Debian/Ubuntu: apt-get install -y prometheus)")
	}
	m := startMetricsGateway(t, sizingConfig("lint", sizingUpstream(t)))
	for _, p := range []string{"/s/small", "/s/big", "/s/fail", "/dead/x", "/nowhere"} {
		get(t, "GET", m.client, p)
	}
	get(t, "POST", m.client, "/s/small")
	out := m.waitMetrics(t, `http_response_size_bytes_count{route="lint-sized"} 4`)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, res)
	}
}

const pprofConfig = `
log: { access_log: false }
admin: { pprof: %s }
upstreams:
  up: { targets: ["http://%s"] }
routes:
  - name: all
    match: { path_prefix: / }
    upstream: up
`

func TestPprofOnlyOnAdminWhenEnabled(t *testing.T) {
	up := sizingUpstream(t)
	cfg := func(on bool) string {
		return strings.NewReplacer("%s", "").Replace(strings.Replace(strings.Replace(pprofConfig, "%s", strconv.FormatBool(on), 1), "%s", up, 1))
	}
	m := startMetricsGateway(t, cfg(false))
	if status, _, _ := get(t, "GET", m.admin, "/debug/pprof/"); status != 404 {
		t.Fatalf("admin /debug/pprof/ with pprof off: %d, want 404", status)
	}

	m.reload(t, cfg(true))
	tests := []struct {
		givePath string
		wantBody string // a substring of the answer
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/profile?seconds=1", ""},
		{"/debug/pprof/symbol", "num_symbols"},
		{"/debug/pprof/trace?seconds=1", ""},
		{"/debug/pprof/heap?debug=1", "heap profile"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/debug/pprof/allocs?debug=1", "heap profile"},
		{"/debug/pprof/block?debug=1", "contention"},
		{"/debug/pprof/mutex?debug=1", "mutex"},
		{"/debug/pprof/threadcreate?debug=1", "threadcreate profile"},
	}
	for _, tt := range tests {
		t.Run(tt.givePath, func(t *testing.T) {
			status, n, body := get(t, "GET", m.admin, tt.givePath)
			if status != 200 || n == 0 || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("admin %s: %d with %d bytes, want 200 with %q", tt.givePath, status, n, tt.wantBody)
			}
			// The client listener proxies the path like any other: the
			// upstream answers 404 for it.
			if status, _, body := get(t, "GET", m.client, tt.givePath); status != 404 || strings.Contains(body, "goroutine") {
				t.Fatalf("client listener %s: %d %q, want the upstream's 404", tt.givePath, status, body)
			}
		})
	}
	if status, _, _ := get(t, "GET", m.admin, "/debug/pprof/nosuchprofile"); status != 404 {
		t.Errorf("unknown profile: %d, want 404", status)
	}
	if status, _, _ := get(t, "GET", m.admin, "/debug/pprof"); status != 301 {
		t.Errorf("/debug/pprof: %d, want a 301 to the index", status)
	}

	// Off again on reload.
	m.reload(t, cfg(false))
	if status, _, _ := get(t, "GET", m.admin, "/debug/pprof/heap"); status != 404 {
		t.Fatalf("admin /debug/pprof/heap after pprof was turned off: %d, want 404", status)
	}
}
