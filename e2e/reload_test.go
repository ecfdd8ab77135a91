package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// Two configurations that differ in upstream and plugin chain: A sends to
// the echo server named "A" with the id in X-Trace-A, B to "B" with
// X-Trace-B. A response mixing them would show one server with the other
// header.
const reloadConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
server: { shutdown_timeout: 10s }
upstreams:
  a: { targets: ["http://%s"] }
  b: { targets: ["http://%s"] }
routes:
  - name: r
    match: { path_prefix: /r/ }
    upstream: %s
    plugins:
      - request-id: { header: %s }
  - name: limited
    match: { path: /limited }
    upstream: a
    plugins:
      - ratelimit: { key: ip, limit: 3, period: 1h }
%s
`

func reloadConfigs(aAddr, bAddr string) (string, string) {
	a := fmt.Sprintf(reloadConfig, aAddr, bAddr, "a", "X-Trace-A", "")
	b := fmt.Sprintf(reloadConfig, aAddr, bAddr, "b", "X-Trace-B", `  - name: extra
    match: { path: /extra }
    upstream: b`)
	return a, b
}

// consistent reports which config served a response, or an error for a mix.
func consistent(body []byte) (string, error) {
	var e echo.Request
	if err := json.Unmarshal(body, &e); err != nil {
		return "", fmt.Errorf("bad body: %v: %s", err, body)
	}
	_, hasA := e.Headers["X-Trace-A"]
	_, hasB := e.Headers["X-Trace-B"]
	switch {
	case e.Server == "A" && hasA && !hasB:
		return "A", nil
	case e.Server == "B" && hasB && !hasA:
		return "B", nil
	}
	return "", fmt.Errorf("response mixes configurations: server %s, X-Trace-A %v, X-Trace-B %v", e.Server, hasA, hasB)
}

func reload(t *testing.T, gw *gatewaytest.Process) (int, string) {
	t.Helper()
	r := do(t, "POST", gw.AdminURL("/-/reload"), nil, "")
	return r.Status, string(r.Body)
}

func metricValue(t *testing.T, gw *gatewaytest.Process, name string) float64 {
	t.Helper()
	r := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`).FindStringSubmatch(string(r.Body))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// load runs clients against url until stop is closed: half on keep-alive
// connections, half on a new connection per request.
type load struct {
	ok, failed atomic.Int64
	seen       sync.Map
	errs       chan error
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(t *testing.T, url string, workers int, check func([]byte) (string, error)) *load {
	l := &load{errs: make(chan error, 100), stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		keepAlive := i%2 == 0
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					l.fail(err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					l.fail(fmt.Errorf("status %d err %v: %s", resp.StatusCode, err, body))
					continue
				}
				if check != nil {
					which, err := check(body)
					if err != nil {
						l.fail(err)
						continue
					}
					l.seen.Store(which, true)
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) fail(err error) {
	l.failed.Add(1)
	select {
	case l.errs <- err:
	default:
	}
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	close(l.errs)
	for err := range l.errs {
		t.Errorf("request failed: %v", err)
	}
	t.Logf("load: %d ok, %d failed", l.ok.Load(), l.failed.Load())
}

func TestReloadUnderLoad(t *testing.T) {
	aAddr, bAddr := startEcho(t, "A"), startEcho(t, "B")
	cfgA, cfgB := reloadConfigs(aAddr, bAddr)
	gw := gatewaytest.Start(t, cfgA)
	l := startLoad(t, gw.URL("/r/x"), 6, consistent)
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 20; i++ {
		next := cfgB
		if i%2 == 1 {
			next = cfgA
		}
		gw.WriteConfig(next)
		if i%4 == 0 {
			gw.Signal(syscall.SIGHUP)
			if !gw.WaitLog(`"source":"SIGHUP"`, 5*time.Second) {
				t.Fatal("no reload log after SIGHUP")
			}
		} else {
			status, body := reload(t, gw)
			if status != 200 {
				t.Fatalf("reload %d: %d %s", i, status, body)
			}
			// The next request sees the new configuration.
			want := "B"
			if i%2 == 1 {
				want = "A"
			}
			r := do(t, "GET", gw.URL("/r/check"), nil, "")
			if got, err := consistent(r.Body); err != nil || got != want {
				t.Fatalf("after reload %d: served by %q (%v), want %q", i, got, err, want)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.finish(t)
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed during reloads", l.failed.Load())
	}
	for _, w := range []string{"A", "B"} {
		if _, ok := l.seen.Load(w); !ok {
			t.Fatalf("no response from config %s", w)
		}
	}
	if got := metricValue(t, gw, `gateway_config_reloads_total{result="success"}`); got < 15 {
		t.Fatalf("reload success counter = %v", got)
	}
	if !strings.Contains(gw.Logs(), "routes added: extra") {
		t.Fatalf("reload summary missing from logs:\n%s", gw.Logs())
	}
}

func TestReloadInvalidKeepsServing(t *testing.T) {
	aAddr, bAddr := startEcho(t, "A"), startEcho(t, "B")
	cfgA, _ := reloadConfigs(aAddr, bAddr)
	gw := gatewaytest.Start(t, cfgA)
	l := startLoad(t, gw.URL("/r/x"), 4, consistent)
	broken := strings.Replace(cfgA, "upstream: a\n    plugins:", "upstream: nowhere\n    plugins:", 1)
	broken = strings.Replace(broken, "limit: 3,", "limit: 0,", 1)
	gw.WriteConfig(broken)
	status, body := reload(t, gw)
	if status != 400 {
		t.Fatalf("reload of a broken file: %d %s", status, body)
	}
	var res struct{ Errors []string }
	_ = json.Unmarshal([]byte(body), &res)
	if len(res.Errors) != 2 {
		t.Fatalf("want 2 errors, got %q", res.Errors)
	}
	// The same errors as -check, file:line included.
	code, out := gatewaytest.RunCheck(t, gw.ConfigPath)
	if code != 1 {
		t.Fatalf("-check exit %d: %s", code, out)
	}
	for _, e := range res.Errors {
		if !strings.HasPrefix(e, gw.ConfigPath+":") {
			t.Fatalf("error without file:line: %q", e)
		}
		if !strings.Contains(out, e) {
			t.Fatalf("-check output lacks %q:\n%s", e, out)
		}
		if !gw.WaitLog(jsonEscape(e), 2*time.Second) {
			t.Fatalf("error %q not logged", e)
		}
	}
	gw.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if got := metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`); got != 2 {
		t.Fatalf("failure counter = %v, want 2", got)
	}
	l.finish(t)
	if l.failed.Load() != 0 {
		t.Fatalf("%d requests failed", l.failed.Load())
	}
	if _, ok := l.seen.Load("B"); ok {
		t.Fatal("a broken config was partly applied")
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func TestReloadKeepsRateLimitState(t *testing.T) {
	aAddr, bAddr := startEcho(t, "A"), startEcho(t, "B")
	cfgA, cfgB := reloadConfigs(aAddr, bAddr)
	gw := gatewaytest.Start(t, cfgA)
	for i := 0; i < 3; i++ {
		if r := do(t, "GET", gw.URL("/limited"), nil, ""); r.Status != 200 {
			t.Fatalf("request %d: %d", i, r.Status)
		}
	}
	gw.WriteConfig(cfgB)
	if status, body := reload(t, gw); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	if r := do(t, "GET", gw.URL("/limited"), nil, ""); r.Status != 429 {
		t.Fatalf("bucket forgotten across reload: %d", r.Status)
	}
}

func TestReloadNoLeaks(t *testing.T) {
	aAddr, bAddr := startEcho(t, "A"), startEcho(t, "B")
	cfgA, cfgB := reloadConfigs(aAddr, bAddr)
	gw := gatewaytest.Start(t, cfgA)
	warm := func() {
		for i := 0; i < 5; i++ {
			do(t, "GET", gw.URL("/r/x"), nil, "")
		}
	}
	warm()
	time.Sleep(200 * time.Millisecond)
	g0 := metricValue(t, gw, "go_goroutines")
	f0 := metricValue(t, gw, "process_open_fds")
	for i := 0; i < 100; i++ {
		next := cfgB
		if i%2 == 1 {
			next = cfgA
		}
		gw.WriteConfig(next)
		if status, body := reload(t, gw); status != 200 {
			t.Fatalf("reload %d: %d %s", i, status, body)
		}
		warm()
	}
	time.Sleep(500 * time.Millisecond)
	g1 := metricValue(t, gw, "go_goroutines")
	f1 := metricValue(t, gw, "process_open_fds")
	t.Logf("after 100 reloads: goroutines %v -> %v, open fds %v -> %v", g0, g1, f0, f1)
	if g0 == 0 || f0 == 0 {
		t.Fatal("process metrics missing")
	}
	if g1 > g0+10 || f1 > f0+10 {
		t.Fatalf("leak across reloads: goroutines %v -> %v, fds %v -> %v", g0, g1, f0, f1)
	}
}

func TestShutdownUnderLoad(t *testing.T) {
	echoAddr := startEcho(t, "A")
	cfg := fmt.Sprintf(`
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
server: { shutdown_timeout: 5s, shutdown_delay: 500ms }
upstreams:
  a: { targets: ["http://%s"], timeout: 10s }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: a
`, echoAddr)
	gw := gatewaytest.Start(t, cfg)
	type result struct {
		status int
		err    error
	}
	var mu sync.Mutex
	var results []result
	var wg sync.WaitGroup
	started := make(chan struct{}, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Slow requests, already accepted before the signal.
			c, err := net.Dial("tcp", gw.Addr)
			if err != nil {
				mu.Lock()
				results = append(results, result{err: err})
				mu.Unlock()
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /slow?sleep=%dms HTTP/1.1\r\nHost: x\r\n\r\n", 800+20*i)
			started <- struct{}{}
			buf := make([]byte, 64)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := c.Read(buf)
			status := 0
			if n >= 12 {
				status, _ = strconv.Atoi(string(buf[9:12]))
			}
			mu.Lock()
			results = append(results, result{status: status, err: err})
			mu.Unlock()
		}(i)
	}
	for i := 0; i < 20; i++ {
		<-started
	}
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	gw.Signal(syscall.SIGTERM)
	// During the pre-stop delay readiness is 503 while requests still flow.
	time.Sleep(100 * time.Millisecond)
	if r := do(t, "GET", gw.AdminURL("/readyz"), nil, ""); r.Status != 503 {
		t.Fatalf("/readyz during drain = %d", r.Status)
	}
	time.Sleep(700 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", gw.Addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("new connection accepted after the drain started")
	}
	wg.Wait()
	code, err := gw.Wait(10 * time.Second)
	elapsed := time.Since(t0)
	if err != nil || code != 0 {
		t.Fatalf("exit %d %v", code, err)
	}
	if elapsed > 5*time.Second+time.Second {
		t.Fatalf("shutdown took %v, beyond shutdown_timeout", elapsed)
	}
	for _, r := range results {
		if r.status != 200 {
			t.Fatalf("in-flight request ended with %d (%v)", r.status, r.err)
		}
	}
}
