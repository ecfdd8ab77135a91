package ratelimit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// request is one request through a plugin, as the gateway runs it: Handle,
// then (when it passed) the upstream's answer, then OnResponse.
type request struct {
	ctx fasthttp.RequestCtx
	st  *reqctx.State
}

func newRequest(ip string) *request {
	r := &request{}
	r.ctx.Request.SetRequestURI("/v1/users/1")
	r.st = reqctx.Acquire(&r.ctx)
	r.st.RequestID = append(r.st.RequestID[:0], "rid-1"...)
	r.st.ClientIP = append(r.st.ClientIP[:0], ip...)
	return r
}

// run sends r through ls in order and returns the verdict.
func (r *request) run(ls ...*Limiter) plugins.Verdict {
	n, v := 0, plugins.Next
	for _, l := range ls {
		n++
		if v = l.Handle(&r.ctx); v == plugins.Done {
			break
		}
	}
	if v == plugins.Next {
		// The upstream's response replaces whatever was set before.
		r.ctx.Response.Reset()
		r.ctx.Response.SetBodyString("upstream")
	}
	for _, l := range ls[:n] {
		l.OnResponse(&r.ctx)
	}
	return v
}

func (r *request) header(name string) string { return string(r.ctx.Response.Header.Peek(name)) }

var allHeaders = []string{"RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"}

func TestHeaders(t *testing.T) {
	tests := []struct {
		name string
		give string
		want map[string]string // absent names of allHeaders must be absent
	}{
		{"both", "limit: 10\nperiod: 1m\nburst: 5", map[string]string{
			"RateLimit-Policy":    `"users";q=10;w=60`,
			"RateLimit":           `"users";r=4;t=6`,
			"RateLimit-Limit":     "5",
			"RateLimit-Remaining": "4",
			"RateLimit-Reset":     "6",
		}},
		{"ietf", "limit: 10\nperiod: 1m\nburst: 5\nheaders: ietf", map[string]string{
			"RateLimit-Policy": `"users";q=10;w=60`,
			"RateLimit":        `"users";r=4;t=6`,
		}},
		{"legacy", "limit: 10\nperiod: 1m\nburst: 5\nheaders: legacy", map[string]string{
			"RateLimit-Limit":     "5",
			"RateLimit-Remaining": "4",
			"RateLimit-Reset":     "6",
		}},
		{"off", "limit: 10\nperiod: 1m\nburst: 5\nheaders: off", map[string]string{}},
		{"reset rounded up", "limit: 7\nperiod: 1m\ncost: 2", map[string]string{
			// 2 tokens at 7/min: 17.14s.
			"RateLimit-Policy":    `"users";q=7;w=60`,
			"RateLimit":           `"users";r=5;t=18`,
			"RateLimit-Limit":     "7",
			"RateLimit-Remaining": "5",
			"RateLimit-Reset":     "18",
		}},
		{"period rounded up to seconds", "limit: 2\nperiod: 1500ms\nheaders: ietf", map[string]string{
			"RateLimit-Policy": `"users";q=2;w=2`,
			"RateLimit":        `"users";r=1;t=1`,
		}},
		{"shared bucket names the policy", "limit: 3\nperiod: 1h\nbucket: 'api \"v1\"'\nheaders: ietf", map[string]string{
			"RateLimit-Policy": `"api \"v1\"";q=3;w=3600`,
			"RateLimit":        `"api \"v1\"";r=2;t=1200`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newMemory(t)
			l := build(t, "users", tt.give, st)
			r := newRequest("192.0.2.1")
			if v := r.run(l); v != plugins.Next {
				t.Fatalf("verdict %v, want Next", v)
			}
			if body := string(r.ctx.Response.Body()); body != "upstream" {
				t.Fatalf("body %q, want the upstream's", body)
			}
			for _, name := range allHeaders {
				want, ok := tt.want[name]
				if got := r.header(name); got != want || !ok && got != "" {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestReject(t *testing.T) {
	st, c := newMemory(t)
	l := build(t, "login", "limit: 1\nperiod: 1m\nburst: 2", st)
	rejected := metrics.ForRoute("login").RateLimitRejected()
	before := rejected.Get()
	for i := 0; i < 2; i++ {
		if v := newRequest("192.0.2.9").run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v, want Next", i, v)
		}
	}
	c.Advance(20 * time.Second)
	r := newRequest("192.0.2.9")
	if v := r.run(l); v != plugins.Done {
		t.Fatalf("verdict %v, want Done", v)
	}
	if code := r.ctx.Response.StatusCode(); code != fasthttp.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", code)
	}
	// A token comes 60s after the first take: 40s from now.
	const wantBody = `{"error":"rate_limited","message":"rate limit exceeded","request_id":"rid-1","retry_after":40}`
	if body := string(r.ctx.Response.Body()); body != wantBody {
		t.Errorf("body %s, want %s", body, wantBody)
	}
	want := map[string]string{
		"Retry-After":         "40",
		"Content-Type":        "application/json",
		"RateLimit-Policy":    `"login";q=1;w=60`,
		"RateLimit":           `"login";r=0;t=100`,
		"RateLimit-Limit":     "2",
		"RateLimit-Remaining": "0",
		"RateLimit-Reset":     "100",
	}
	for name, w := range want {
		if got := r.header(name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	if d := rejected.Get() - before; d != 1 {
		t.Errorf("gateway_ratelimit_rejected_total{route=login} grew by %d, want 1", d)
	}
	// Another client is not affected.
	if v := newRequest("192.0.2.10").run(l); v != plugins.Next {
		t.Fatalf("another IP: verdict %v, want Next", v)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"rounded up", "limit: 7\nperiod: 1m\nburst: 1", "9"},           // 8.57s
		{"never zero", "limit: 1000\nperiod: 1s\nburst: 1", "1"},        // 1ms
		{"whole seconds kept", "limit: 1\nperiod: 30s\nburst: 1", "30"}, // exactly 30s
		{"cost waits for several tokens", "limit: 1\nperiod: 1s\nburst: 3\ncost: 3", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newMemory(t)
			l := build(t, "r", tt.give, st)
			newRequest("192.0.2.1").run(l)
			r := newRequest("192.0.2.1")
			if v := r.run(l); v != plugins.Done {
				t.Fatalf("verdict %v, want Done", v)
			}
			if got := r.header("Retry-After"); got != tt.want {
				t.Fatalf("Retry-After = %q, want %q", got, tt.want)
			}
			if body := string(r.ctx.Response.Body()); !strings.HasSuffix(body, `"retry_after":`+tt.want+"}") {
				t.Fatalf("body %s, want retry_after %s", body, tt.want)
			}
		})
	}
}

func TestSeveralLimitersOnARoute(t *testing.T) {
	st, _ := newMemory(t)
	perIP := build(t, "users", "key: ip\nlimit: 100\nperiod: 1m\nheaders: legacy\nbucket: per-ip", st)
	perUser := build(t, "users", "key: user\nlimit: 3\nperiod: 1m\nheaders: legacy\nbucket: per-user", st)
	// The response describes the limiter with the fewest tokens left.
	r := newRequest("192.0.2.1")
	r.st.Authenticated = true
	r.st.Identity.Subject = append(r.st.Identity.Subject, "alice"...)
	if v := r.run(perIP, perUser); v != plugins.Next {
		t.Fatalf("verdict %v", v)
	}
	if got := r.header("RateLimit-Limit") + "/" + r.header("RateLimit-Remaining"); got != "3/2" {
		t.Fatalf("limit/remaining = %s, want the per-user bucket's 3/2", got)
	}
	r = newRequest("192.0.2.1")
	if v := r.run(perUser, perIP); v != plugins.Next {
		t.Fatalf("verdict %v", v)
	}
	// Anonymous: per-user falls back to the IP, a fresh bucket of 3.
	if got := r.header("RateLimit-Limit") + "/" + r.header("RateLimit-Remaining"); got != "3/2" {
		t.Fatalf("limit/remaining = %s, want 3/2 whatever the order", got)
	}
}

// newRedis starts a redis-server and connects a store to it.
func newRedis(t testing.TB, args ...string) (*redistest.Server, *redis.Store) {
	t.Helper()
	srv := redistest.Start(t, args...)
	noCache := false
	s, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}, ClientSideCache: &noCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return srv, s
}

func TestRedisStore(t *testing.T) {
	_, s := newRedis(t)
	l := build(t, "users", "limit: 2\nperiod: 1h", s)
	if l.local {
		t.Fatal("the Redis store is treated as local")
	}
	for i, want := range []string{"1", "0"} {
		r := newRequest("192.0.2.1")
		if v := r.run(l); v != plugins.Next {
			t.Fatalf("request %d: verdict %v", i, v)
		}
		if got := r.header("RateLimit-Remaining"); got != want {
			t.Fatalf("request %d: remaining %q, want %q", i, got, want)
		}
	}
	r := newRequest("192.0.2.1")
	if v := r.run(l); v != plugins.Done || r.ctx.Response.StatusCode() != fasthttp.StatusTooManyRequests {
		t.Fatalf("third request: verdict %v status %d, want 429", v, r.ctx.Response.StatusCode())
	}
	if got := r.header("Retry-After"); got != "1800" {
		t.Fatalf("Retry-After = %q, want 1800", got)
	}
}

func TestStoreDown(t *testing.T) {
	srv, s := newRedis(t)
	srv.RequireOwned(t)
	core, logs := observer.New(zapcore.WarnLevel)
	env := &plugins.Env{Route: "users", Store: s, Logger: zap.New(core)}
	mk := func(src string) *Limiter {
		p, err := Factory{}.Build(section(t, src), env)
		if err != nil {
			t.Fatal(err)
		}
		return p.(*Limiter)
	}
	allow := mk("limit: 5\nperiod: 1m\nstore_timeout: 100ms")
	deny := mk("limit: 5\nperiod: 1m\non_store_error: deny\nstore_timeout: 100ms")
	if v := newRequest("192.0.2.1").run(allow); v != plugins.Next {
		t.Fatal("not allowed with the store up")
	}
	srv.Kill()
	errs := metrics.StoreErrors("ratelimit")
	before := errs.Get()

	r := newRequest("192.0.2.1")
	start := time.Now()
	v := r.run(allow)
	took := time.Since(start)
	if v != plugins.Next || r.ctx.Response.StatusCode() != fasthttp.StatusOK {
		t.Fatalf("on_store_error allow: verdict %v status %d, want the request passed", v, r.ctx.Response.StatusCode())
	}
	// A stall bound, not a speed assertion: far above store_timeout.
	if took > time.Second {
		t.Fatalf("a request waited %v for a dead store with store_timeout 100ms", took)
	}
	for _, name := range allHeaders {
		if got := r.header(name); got != "" {
			t.Errorf("%s = %q without a store answer, want none", name, got)
		}
	}

	r = newRequest("192.0.2.1")
	if v := r.run(deny); v != plugins.Done || r.ctx.Response.StatusCode() != fasthttp.StatusServiceUnavailable {
		t.Fatalf("on_store_error deny: verdict %v status %d, want 503", v, r.ctx.Response.StatusCode())
	}
	const wantBody = `{"error":"unavailable","message":"rate limit store unavailable","request_id":"rid-1"}`
	if body := string(r.ctx.Response.Body()); body != wantBody {
		t.Errorf("body %s, want %s", body, wantBody)
	}

	for i := 0; i < 20; i++ {
		newRequest("192.0.2.1").run(allow)
	}
	if d := errs.Get() - before; d != 22 {
		t.Errorf("gateway_store_errors_total{op=ratelimit} grew by %d, want 22", d)
	}
	// Logged rarely, not per request: one line per instance within logEvery.
	if n := logs.Len(); n != 2 {
		t.Errorf("%d log lines for 22 store errors of 2 instances, want 2", n)
	}
	for _, e := range logs.All() {
		if e.ContextMap()["route"] != "users" || e.ContextMap()["error"] == nil {
			t.Errorf("log line %q lacks route or error: %v", e.Message, e.ContextMap())
		}
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = newRequest("192.0.2.1")
		if r.run(deny) == plugins.Next {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still failing 10s after the store came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.header("RateLimit-Remaining"); got != "4" {
		t.Fatalf("after restart: remaining %q, want 4 (a fresh bucket)", got)
	}
}

// TestStoreTimeout blocks the server (DEBUG SLEEP) so the store call times
// out: the request is not held past store_timeout and is not counted as
// admitted by the store.
func TestStoreTimeout(t *testing.T) {
	srv, s := newRedis(t, "--enable-debug-command", "yes")
	l := build(t, "users", "limit: 5\nperiod: 1m\nstore_timeout: 50ms", s)
	if v := newRequest("192.0.2.1").run(l); v != plugins.Next {
		t.Fatal("not allowed with the store up")
	}
	done := make(chan error, 1)
	go func() {
		_, err := srv.Do("DEBUG", "SLEEP", "0.5")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the server start sleeping
	errs := metrics.StoreErrors("ratelimit")
	before := errs.Get()
	r := newRequest("192.0.2.1")
	start := time.Now()
	v := r.run(l)
	took := time.Since(start)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v != plugins.Next || r.header("RateLimit-Remaining") != "" {
		t.Fatalf("verdict %v, RateLimit-Remaining %q: want allowed by on_store_error, without store headers",
			v, r.header("RateLimit-Remaining"))
	}
	if errs.Get()-before != 1 {
		t.Fatal("the timed-out call was not counted as a store error")
	}
	if took >= 400*time.Millisecond {
		t.Fatalf("the request waited %v for a blocked store, store_timeout 50ms", took)
	}
	t.Logf("request with a blocked store answered after %v (store_timeout 50ms)", took)
}

func TestLogGate(t *testing.T) {
	var g logGate
	now := time.Unix(1_900_000_000, 0)
	if n, ok := g.open(now); !ok || n != 0 {
		t.Fatalf("first: %d, %v; want logged", n, ok)
	}
	for i := 0; i < 5; i++ {
		if _, ok := g.open(now.Add(time.Duration(i) * time.Second)); ok {
			t.Fatal("logged again within logEvery")
		}
	}
	if n, ok := g.open(now.Add(logEvery)); !ok || n != 5 {
		t.Fatalf("after logEvery: %d, %v; want logged with 5 suppressed", n, ok)
	}
}

// failingStore is a real store whose Take fails, for the error path without
// a network.
type failingStore struct{ store.Store }

func (failingStore) Take(context.Context, []byte, store.Rate, int64) (store.Result, error) {
	return store.Result{}, store.ErrUnavailable
}

func TestStoreErrorIsNeverAdmission(t *testing.T) {
	mem, _ := newMemory(t)
	l := build(t, "users", "limit: 1\nperiod: 1h\non_store_error: deny", failingStore{mem})
	r := newRequest("192.0.2.1")
	if v := r.run(l); v != plugins.Done || r.ctx.Response.StatusCode() != fasthttp.StatusServiceUnavailable {
		t.Fatalf("verdict %v status %d, want 503", v, r.ctx.Response.StatusCode())
	}
	for _, name := range allHeaders {
		if got := r.header(name); got != "" {
			t.Errorf("%s = %q for a failed store call, want none", name, got)
		}
	}
}
