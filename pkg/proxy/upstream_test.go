package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

func TestRoundRobinDistribution(t *testing.T) {
	var backends []*backend
	var targets []string
	for i := range 3 {
		b := startBackend(t, textHandler(fmt.Sprintf("b%d", i)))
		backends = append(backends, b)
		targets = append(targets, b.url)
	}
	u := newTestUpstream(t, Config{Targets: targets})

	seen := make([]string, 0, 6)
	for range 300 {
		body, err := get(t, u, fasthttp.MethodGet, "/x")
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) < 6 {
			seen = append(seen, body)
		}
	}
	for i, b := range backends {
		if got := b.hits.Load(); got != 100 {
			t.Errorf("backend %d got %d requests, want 100", i, got)
		}
	}
	if got, want := strings.Join(seen, ","), "b0,b1,b2,b0,b1,b2"; got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
}

func TestLeastConnPrefersIdleTarget(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 1)
	handler := func(name string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/slow" {
				arrived <- name
				<-release
			}
			ctx.SetBodyString(name)
		}
	}
	a := startBackend(t, handler("a"))
	b := startBackend(t, handler("b"))
	u := newTestUpstream(t, Config{Targets: []string{a.url, b.url}, Balance: BalanceLeastConn})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := get(t, u, fasthttp.MethodGet, "/slow"); err != nil {
			t.Error(err)
		}
	}()
	busy := <-arrived
	for range 20 {
		body, err := get(t, u, fasthttp.MethodGet, "/fast")
		if err != nil {
			t.Fatal(err)
		}
		if body == busy {
			t.Fatalf("request went to the busy target %s", busy)
		}
	}
	close(release)
	wg.Wait()

	// With nothing in flight, least_conn spreads requests over both targets.
	counts := map[string]int{}
	for range 10 {
		body, err := get(t, u, fasthttp.MethodGet, "/fast")
		if err != nil {
			t.Fatal(err)
		}
		counts[body]++
	}
	if counts["a"] == 0 || counts["b"] == 0 {
		t.Errorf("idle least_conn distribution = %v, want both targets used", counts)
	}
}

func TestEjectionAndRecovery(t *testing.T) {
	live := startBackend(t, textHandler("live"))
	dead := deadURL(t)
	u := newTestUpstream(t, Config{
		Targets:    []string{dead, live.url},
		EjectAfter: 2,
		EjectFor:   300 * time.Millisecond,
	})
	ejections := u.ejections.Get()
	deadTarget := u.targets[0]

	// Round robin starts at the dead target: requests 1 and 3 fail.
	var failures int
	for range 4 {
		if _, err := get(t, u, fasthttp.MethodGet, "/"); err != nil {
			mustKind(t, err, ErrBadGateway)
			failures++
		}
	}
	if failures != 2 {
		t.Fatalf("failures before ejection = %d, want 2", failures)
	}
	if got := u.ejections.Get() - ejections; got != 1 {
		t.Fatalf("ejections = %d, want 1", got)
	}
	if got := deadTarget.gauge.Get(); got != 0 {
		t.Fatalf("healthy gauge of the ejected target = %v, want 0", got)
	}
	for range 10 {
		if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || body != "live" {
			t.Fatalf("while ejected: body %q, err %v", body, err)
		}
	}

	// The dead target comes back; once the ejection ends it takes traffic.
	ln, err := net.Listen("tcp", strings.TrimPrefix(dead, "http://"))
	if err != nil {
		t.Skipf("cannot listen on the freed port again: %v", err)
	}
	serveBackend(t, ln, textHandler("revived"))
	waitFor(t, "the revived target to take traffic", func() bool {
		body, err := get(t, u, fasthttp.MethodGet, "/")
		return err == nil && body == "revived"
	})
	if got := deadTarget.gauge.Get(); got != 1 {
		t.Errorf("healthy gauge after recovery = %v, want 1", got)
	}
}

func TestEjectedTargetIsEjectedAgainOnNextFailure(t *testing.T) {
	live := startBackend(t, textHandler("live"))
	u := newTestUpstream(t, Config{
		Targets:    []string{deadURL(t), live.url},
		EjectAfter: 2,
		EjectFor:   50 * time.Millisecond,
	})
	start := u.ejections.Get()
	for range 4 {
		_, _ = get(t, u, fasthttp.MethodGet, "/")
	}
	if got := u.ejections.Get() - start; got != 1 {
		t.Fatalf("ejections = %d, want 1", got)
	}
	time.Sleep(60 * time.Millisecond)
	// The first request after the ejection ends goes to the dead target
	// (round robin) and ejects it again at once.
	for range 2 {
		_, _ = get(t, u, fasthttp.MethodGet, "/")
	}
	if got := u.ejections.Get() - start; got != 2 {
		t.Fatalf("ejections = %d, want 2", got)
	}
}

func TestAllTargetsEjectedIsUnavailable(t *testing.T) {
	u := newTestUpstream(t, Config{Targets: []string{deadURL(t)}, EjectAfter: 1, EjectFor: time.Minute})
	_, err := get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrBadGateway)
	_, err = get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrUnavailable)
	if status, code := Classify(err); status != 503 || code != "unavailable" {
		t.Errorf("Classify = %d %s, want 503 unavailable", status, code)
	}
}

func TestHealthCheckMarksDownAndUp(t *testing.T) {
	var aHealthy atomic.Bool
	aHealthy.Store(true)
	healthHandler := func(name string, ok func() bool) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/healthz" {
				if !ok() {
					ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				}
				return
			}
			ctx.SetBodyString(name)
		}
	}
	a := startBackend(t, healthHandler("a", aHealthy.Load))
	b := startBackend(t, healthHandler("b", func() bool { return true }))
	u := newTestUpstream(t, Config{
		Targets: []string{a.url, b.url},
		// Checks of b that time out on a loaded machine would mark it down
		// too, and with every target down both take traffic again.
		HealthCheck: &HealthCheck{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond},
	})
	ta := u.targets[0]

	aHealthy.Store(false)
	waitFor(t, "target a to be marked down", func() bool { return !ta.healthy.Load() })
	if got := ta.gauge.Get(); got != 0 {
		t.Errorf("healthy gauge = %v, want 0", got)
	}
	for range 10 {
		if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || body != "b" {
			t.Fatalf("while a is down: body %q, err %v", body, err)
		}
	}

	aHealthy.Store(true)
	waitFor(t, "target a to be marked up", ta.healthy.Load)
	if got := ta.gauge.Get(); got != 1 {
		t.Errorf("healthy gauge = %v, want 1", got)
	}
	counts := map[string]int{}
	for range 10 {
		body, err := get(t, u, fasthttp.MethodGet, "/")
		if err != nil {
			t.Fatal(err)
		}
		counts[body]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Errorf("distribution after recovery = %v, want 5 each", counts)
	}
}

func TestHealthCheckFailsOpenWhenAllTargetsAreDown(t *testing.T) {
	h := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" {
			ctx.SetStatusCode(fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetBodyString("served")
	}
	a := startBackend(t, h)
	b := startBackend(t, h)
	u := newTestUpstream(t, Config{
		Targets:     []string{a.url, b.url},
		HealthCheck: &HealthCheck{Path: "/healthz", Interval: 10 * time.Millisecond},
	})
	waitFor(t, "both targets to be marked down", func() bool {
		return !u.targets[0].healthy.Load() && !u.targets[1].healthy.Load()
	})
	for range 4 {
		if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || body != "served" {
			t.Fatalf("body %q, err %v; want the request served despite failing checks", body, err)
		}
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Errorf("hits a=%d b=%d, want both used", a.hits.Load(), b.hits.Load())
	}
}

func TestHealthCheckEndsEjection(t *testing.T) {
	// A passive ejection is lifted by the next passing active check.
	b := startBackend(t, textHandler("ok"))
	u := newTestUpstream(t, Config{
		Targets:     []string{b.url},
		EjectFor:    time.Hour,
		HealthCheck: &HealthCheck{Path: "/", Interval: 10 * time.Millisecond},
	})
	tg := u.targets[0]
	tg.ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	tg.failures.Store(5)
	waitFor(t, "the health check to lift the ejection", func() bool { return tg.ejectedUntil.Load() == 0 })
	if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || body != "ok" {
		t.Fatalf("body %q, err %v", body, err)
	}
}

func TestRetriesOnConnectErrorOnlyForIdempotentMethods(t *testing.T) {
	live := startBackend(t, textHandler("live"))
	tests := []struct {
		giveMethod string
		wantErr    error
	}{
		{giveMethod: fasthttp.MethodGet},
		{giveMethod: fasthttp.MethodHead},
		{giveMethod: fasthttp.MethodPut},
		{giveMethod: fasthttp.MethodDelete},
		{giveMethod: fasthttp.MethodOptions},
		{giveMethod: fasthttp.MethodPost, wantErr: ErrBadGateway},
		{giveMethod: fasthttp.MethodPatch, wantErr: ErrBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod, func(t *testing.T) {
			before := live.hits.Load()
			// The dead target is first in the rotation; ejection is off so
			// every request meets it.
			u := newTestUpstream(t, Config{Targets: []string{deadURL(t), live.url}, Retries: 1, EjectAfter: -1})
			_, err := get(t, u, tt.giveMethod, "/")
			if tt.wantErr != nil {
				mustKind(t, err, tt.wantErr)
				if got := live.hits.Load() - before; got != 0 {
					t.Fatalf("live target got %d requests, want 0: %s must not be retried", got, tt.giveMethod)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s not retried onto the live target: %v", tt.giveMethod, err)
			}
			if got := live.hits.Load() - before; got != 1 {
				t.Fatalf("live target got %d requests, want 1", got)
			}
		})
	}
}

func TestNoRetryAfterRequestWasSent(t *testing.T) {
	// The first target accepts and resets the connection after reading the
	// request: bytes were sent, so even a GET is not retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	live := startBackend(t, textHandler("live"))
	u := newTestUpstream(t, Config{Targets: []string{"http://" + ln.Addr().String(), live.url}, Retries: 1})
	_, err = get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrBadGateway)
	if live.hits.Load() != 0 {
		t.Fatalf("live target got %d requests, want 0", live.hits.Load())
	}
}

func TestTimeout(t *testing.T) {
	slow := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(300 * time.Millisecond)
		ctx.SetBodyString("late")
	})
	t.Run("configured", func(t *testing.T) {
		u := newTestUpstream(t, Config{Targets: []string{slow.url}, Timeout: 30 * time.Millisecond})
		_, err := get(t, u, fasthttp.MethodGet, "/")
		mustKind(t, err, ErrTimeout)
	})
	t.Run("per call", func(t *testing.T) {
		u := newTestUpstream(t, Config{Targets: []string{slow.url}})
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("/")
		err := u.Do(req, resp, 30*time.Millisecond)
		mustKind(t, err, ErrTimeout)
		if status, code := Classify(err); status != 504 || code != "gateway_timeout" {
			t.Errorf("Classify = %d %s", status, code)
		}
	})
	t.Run("connect", func(t *testing.T) {
		// A 1ns connect timeout makes every dial time out.
		u := newTestUpstream(t, Config{Targets: []string{slow.url}, ConnectTimeout: time.Nanosecond, EjectAfter: -1})
		_, err := get(t, u, fasthttp.MethodGet, "/")
		mustKind(t, err, ErrTimeout)
		if !isConnectError(err) {
			t.Errorf("error %v is not a connect error", err)
		}
	})
}

func TestRefusedIsBadGateway(t *testing.T) {
	u := newTestUpstream(t, Config{Targets: []string{deadURL(t)}})
	_, err := get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrBadGateway)
	var ue *UpstreamError
	if !errors.As(err, &ue) || ue.Target == "" || ue.Upstream != u.Name() {
		t.Fatalf("error %#v does not name the upstream and target", err)
	}
}

func TestOversizedResponseIsBadGateway(t *testing.T) {
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name        string
		giveHandler fasthttp.RequestHandler
	}{
		{
			name:        "content-length",
			giveHandler: textHandler(big),
		},
		{
			name: "chunked",
			giveHandler: func(ctx *fasthttp.RequestCtx) {
				ctx.SetBodyStream(strings.NewReader(big), -1)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBackend(t, tt.giveHandler)
			u := newTestUpstream(t, Config{Targets: []string{b.url}, MaxResponseBodySize: 1024})
			_, err := get(t, u, fasthttp.MethodGet, "/")
			mustKind(t, err, ErrBadGateway)
			if !errors.Is(err, fasthttp.ErrBodyTooLarge) {
				t.Errorf("cause = %v, want ErrBodyTooLarge", err)
			}
			// A body within the limit still passes.
			u2 := newTestUpstream(t, Config{Targets: []string{b.url}, MaxResponseBodySize: 4096})
			if body, err := get(t, u2, fasthttp.MethodGet, "/"); err != nil || body != big {
				t.Fatalf("within limit: len %d, err %v", len(body), err)
			}
		})
	}
}

func TestNoFreeConnectionIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}, MaxConnsPerTarget: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = get(t, u, fasthttp.MethodGet, "/")
	}()
	<-arrived
	_, err := get(t, u, fasthttp.MethodGet, "/")
	close(release)
	wg.Wait()
	mustKind(t, err, ErrUnavailable)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		giveErr    error
		wantStatus int
		wantCode   string
	}{
		{name: "nil", giveErr: nil, wantStatus: 0, wantCode: ""},
		{name: "timeout", giveErr: ErrTimeout, wantStatus: 504, wantCode: "gateway_timeout"},
		{name: "unavailable", giveErr: ErrUnavailable, wantStatus: 503, wantCode: "unavailable"},
		{name: "bad gateway", giveErr: ErrBadGateway, wantStatus: 502, wantCode: "bad_gateway"},
		{
			name:       "wrapped timeout",
			giveErr:    &UpstreamError{Upstream: "u", Kind: ErrTimeout, Err: fasthttp.ErrTimeout},
			wantStatus: 504, wantCode: "gateway_timeout",
		},
		{
			name:       "wrapped unavailable",
			giveErr:    &UpstreamError{Upstream: "u", Kind: ErrUnavailable, Err: fasthttp.ErrNoFreeConns},
			wantStatus: 503, wantCode: "unavailable",
		},
		{
			name:       "wrapped bad gateway",
			giveErr:    &UpstreamError{Upstream: "u", Kind: ErrBadGateway, Err: errors.New("connection reset")},
			wantStatus: 502, wantCode: "bad_gateway",
		},
		{name: "fasthttp timeout", giveErr: fasthttp.ErrTimeout, wantStatus: 504, wantCode: "gateway_timeout"},
		{name: "dial timeout", giveErr: fasthttp.ErrDialTimeout, wantStatus: 504, wantCode: "gateway_timeout"},
		{name: "no free conns", giveErr: fasthttp.ErrNoFreeConns, wantStatus: 503, wantCode: "unavailable"},
		{name: "body too large", giveErr: fasthttp.ErrBodyTooLarge, wantStatus: 502, wantCode: "bad_gateway"},
		{name: "unknown", giveErr: errors.New("boom"), wantStatus: 502, wantCode: "bad_gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := Classify(tt.giveErr)
			if status != tt.wantStatus || code != tt.wantCode {
				t.Errorf("Classify(%v) = %d %q, want %d %q", tt.giveErr, status, code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestHostHeader(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(string(ctx.Host()) + " " + string(ctx.RequestURI()))
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	tests := []struct {
		name            string
		givePreserve    bool
		wantHostAndPath string
	}{
		{name: "target host", wantHostAndPath: b.addr + " /a/b%20c?q=1"},
		{name: "preserve host", givePreserve: true, wantHostAndPath: "client.example /a/b%20c?q=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := rawRequest(t, "GET /a/b%20c?q=1 HTTP/1.1\r\nHost: client.example\r\n\r\n")
			req.UseHostHeader = tt.givePreserve
			var resp fasthttp.Response
			if err := u.Do(req, &resp, 0); err != nil {
				t.Fatal(err)
			}
			if got := string(resp.Body()); got != tt.wantHostAndPath {
				t.Errorf("upstream saw %q, want %q", got, tt.wantHostAndPath)
			}
		})
	}
}

func TestPathIsNotNormalisedAgain(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(string(ctx.RequestURI()))
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	req := rawRequest(t, "GET /ignored HTTP/1.1\r\nHost: x\r\n\r\n")
	// The gateway sets the path it authorised; Do sends exactly that.
	req.URI().SetPath("/v1/users/a%2Fb")
	var resp fasthttp.Response
	if err := u.Do(req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	if got := string(resp.Body()); got != "/v1/users/a%2Fb" {
		t.Errorf("upstream saw %q", got)
	}
}

func TestCloseStopsHealthCheckers(t *testing.T) {
	b := startBackend(t, textHandler("ok"))
	before := goleak.IgnoreCurrent()
	u, err := New(Config{
		Name:        "close-test",
		Targets:     []string{b.url, deadURL(t)},
		HealthCheck: &HealthCheck{Interval: 5 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Stop the backend too: its worker goroutines served the checks.
	if err := b.srv.Shutdown(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, append([]goleak.Option{before}, leakOptions...)...)
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		give    Config
		wantErr string
	}{
		{name: "no name", give: Config{Targets: []string{"http://127.0.0.1:1"}}, wantErr: "name: must not be empty"},
		{name: "no targets", give: Config{Name: "u"}, wantErr: "at least one target"},
		{name: "scheme", give: Config{Name: "u", Targets: []string{"ftp://127.0.0.1:1"}}, wantErr: "scheme must be http or https"},
		{name: "no scheme", give: Config{Name: "u", Targets: []string{"127.0.0.1:9000"}}, wantErr: "targets[0]"},
		{name: "path", give: Config{Name: "u", Targets: []string{"http://127.0.0.1:1/api"}}, wantErr: "must not contain a path"},
		{name: "query", give: Config{Name: "u", Targets: []string{"http://127.0.0.1:1?a=b"}}, wantErr: "must not contain a path, query"},
		{name: "user", give: Config{Name: "u", Targets: []string{"http://a:b@127.0.0.1:1"}}, wantErr: "user info"},
		{name: "port", give: Config{Name: "u", Targets: []string{"http://127.0.0.1:99999"}}, wantErr: "port must be"},
		{name: "duplicate", give: Config{Name: "u", Targets: []string{"http://h:1", "http://H:1"}}, wantErr: "duplicate target"},
		{name: "balance", give: Config{Name: "u", Targets: []string{"http://h:1"}, Balance: "random"}, wantErr: "balance"},
		{name: "retries", give: Config{Name: "u", Targets: []string{"http://h:1"}, Retries: -1}, wantErr: "retries"},
		{name: "timeout", give: Config{Name: "u", Targets: []string{"http://h:1"}, Timeout: -time.Second}, wantErr: "timeout"},
		{name: "body size", give: Config{Name: "u", Targets: []string{"http://h:1"}, MaxResponseBodySize: -1}, wantErr: "max_response_body_size"},
		{
			name:    "health path",
			give:    Config{Name: "u", Targets: []string{"http://h:1"}, HealthCheck: &HealthCheck{Path: "healthz"}},
			wantErr: "health_check.path",
		},
		{
			name:    "health timeout",
			give:    Config{Name: "u", Targets: []string{"http://h:1"}, HealthCheck: &HealthCheck{Interval: time.Second, Timeout: 2 * time.Second}},
			wantErr: "health_check.timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(tt.give, nil)
			if err == nil {
				_ = u.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestTargetErrorsHideCredentials: a refused target is quoted without its
// userinfo or query, which may hold credentials.
func TestTargetErrorsHideCredentials(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "user info", give: "http://admin:hunter2@127.0.0.1:1"},
		{name: "query", give: "http://127.0.0.1:1/?api_key=hunter2"},
		{name: "bad scheme", give: "ftp://admin:hunter2@127.0.0.1:1"},
		{name: "bad port", give: "http://admin:hunter2@127.0.0.1:99999"},
		{name: "unparseable", give: "http://admin:hunter2@127.0.0.1:1/%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(Config{Name: "u", Targets: []string{tt.give}}, nil)
			if err == nil {
				_ = u.Close()
				t.Fatal("New succeeded")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q holds the credentials", err)
			}
			if !strings.Contains(err.Error(), "127.0.0.1") {
				t.Fatalf("error %q no longer names the target", err)
			}
		})
	}
}

func TestNewAcceptsTargetForms(t *testing.T) {
	tests := []struct {
		give     string
		wantAddr string
		wantHost string
		wantTLS  bool
	}{
		{give: "http://127.0.0.1:9002", wantAddr: "127.0.0.1:9002", wantHost: "127.0.0.1:9002"},
		{give: "http://api.internal", wantAddr: "api.internal:80", wantHost: "api.internal"},
		{give: "https://API.internal/", wantAddr: "api.internal:443", wantHost: "api.internal", wantTLS: true},
		{give: "https://[::1]:8443", wantAddr: "[::1]:8443", wantHost: "[::1]:8443", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			ta, err := parseTarget(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if ta.addr != tt.wantAddr || ta.host != tt.wantHost || ta.isTLS != tt.wantTLS {
				t.Errorf("parsed %+v, want addr %s host %s tls %v", ta, tt.wantAddr, tt.wantHost, tt.wantTLS)
			}
		})
	}
}

func TestConfigKey(t *testing.T) {
	base := Config{Name: "users", Targets: []string{"http://127.0.0.1:9002", "http://127.0.0.1:9003"}}
	explicit := base
	explicit.Balance = BalanceRoundRobin
	explicit.ConnectTimeout = DefaultConnectTimeout
	explicit.Timeout = DefaultTimeout
	explicit.MaxConnsPerTarget = DefaultMaxConnsPerTarget
	explicit.EjectAfter = DefaultEjectAfter
	explicit.EjectFor = DefaultEjectFor
	if base.Key() != explicit.Key() {
		t.Fatalf("defaults and explicit defaults differ:\n%s\n%s", base.Key(), explicit.Key())
	}

	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{name: "name", modify: func(c *Config) { c.Name = "other" }},
		{name: "target order", modify: func(c *Config) { c.Targets = []string{c.Targets[1], c.Targets[0]} }},
		{name: "targets", modify: func(c *Config) { c.Targets = c.Targets[:1] }},
		{name: "balance", modify: func(c *Config) { c.Balance = BalanceLeastConn }},
		{name: "connect timeout", modify: func(c *Config) { c.ConnectTimeout = 2 * time.Second }},
		{name: "timeout", modify: func(c *Config) { c.Timeout = time.Second }},
		{name: "max conns", modify: func(c *Config) { c.MaxConnsPerTarget = 10 }},
		{name: "retries", modify: func(c *Config) { c.Retries = 1 }},
		{name: "body size", modify: func(c *Config) { c.MaxResponseBodySize = 1 }},
		{name: "eject after", modify: func(c *Config) { c.EjectAfter = 5 }},
		{name: "eject for", modify: func(c *Config) { c.EjectFor = time.Second }},
		{name: "health check", modify: func(c *Config) { c.HealthCheck = &HealthCheck{Path: "/healthz"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Targets = append([]string(nil), base.Targets...)
			tt.modify(&c)
			if c.Key() == base.Key() {
				t.Errorf("key unchanged: %s", c.Key())
			}
		})
	}

	hc1 := base
	hc1.HealthCheck = &HealthCheck{Path: "/healthz"}
	hc2 := base
	hc2.HealthCheck = &HealthCheck{Path: "/healthz", Interval: DefaultHealthCheckInterval, Timeout: DefaultHealthCheckTimeout}
	if hc1.Key() != hc2.Key() {
		t.Errorf("health check defaults change the key:\n%s\n%s", hc1.Key(), hc2.Key())
	}
	if got := (Config{Name: "u", Targets: []string{"HTTP://Host:80/"}}).Key(); !strings.Contains(got, `"http://host:80"`) {
		t.Errorf("target not canonical in key %s", got)
	}
}

func TestConcurrentDo(t *testing.T) {
	handler := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/big" {
			ctx.SetBodyStream(&patternReader{n: 200 << 10}, -1)
			return
		}
		ctx.SetBodyString("ok")
	}
	a := startBackend(t, handler)
	b := startBackend(t, handler)
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		t.Run(balance, func(t *testing.T) {
			u := newTestUpstream(t, Config{
				Targets:     []string{a.url, b.url, deadURL(t)},
				Balance:     balance,
				Retries:     2,
				HealthCheck: &HealthCheck{Interval: 5 * time.Millisecond},
			})
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var req fasthttp.Request
					var resp fasthttp.Response
					for i := range 40 {
						path := "/small"
						if (g+i)%5 == 0 {
							path = "/big"
						}
						req.Reset()
						req.SetRequestURI(path)
						if err := u.Do(&req, &resp, 0); err != nil {
							t.Errorf("%s: %v", path, err)
							return
						}
						n, err := io.Copy(io.Discard, bodyReaderOf(&resp))
						if err != nil || (path == "/big" && n != 200<<10) {
							t.Errorf("%s: read %d bytes: %v", path, n, err)
							return
						}
						resp.Reset()
					}
				}()
			}
			wg.Wait()
		})
	}
}

// bodyReaderOf returns the response body as a reader, streamed or not.
func bodyReaderOf(resp *fasthttp.Response) io.Reader {
	if resp.IsBodyStream() {
		return resp.BodyStream()
	}
	return bytes.NewReader(resp.Body())
}
