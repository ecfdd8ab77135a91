package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/tracing"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Client trace context used by the tests (the W3C Trace Context examples).
const (
	clientTraceID    = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID     = "00f067aa0ba902b7"
	clientSampled    = "00-" + clientTraceID + "-" + clientSpanID + "-01"
	clientNotSampled = "00-" + clientTraceID + "-" + clientSpanID + "-00"
	clientTracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

// traceUpstream is a loopback upstream that records the trace headers of
// each request it gets.
type traceUpstream struct {
	addr string
	mu   sync.Mutex
	got  []traceHeaders
}

type traceHeaders struct{ traceparent, tracestate string }

func newTraceUpstream(t testing.TB) *traceUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &traceUpstream{addr: ln.Addr().String()}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		u.mu.Lock()
		u.got = append(u.got, traceHeaders{
			traceparent: string(ctx.Request.Header.Peek("traceparent")),
			tracestate:  string(ctx.Request.Header.Peek("tracestate")),
		})
		u.mu.Unlock()
		if bytes.HasSuffix(ctx.Path(), []byte("/fail")) {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		}
		ctx.SetBodyString("upstream body")
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return u
}

// last returns the trace headers of the latest request.
func (u *traceUpstream) last(t testing.TB) traceHeaders {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.got[len(u.got)-1]
}

const traceConfig = `
log: { access_log: false }
%s
upstreams:
  up: { targets: ["http://%s"] }
  down: { targets: ["http://127.0.0.1:1"], connect_timeout: 200ms }
plugins:
  auth-jwt: { type: jwt, secret: "%s", issuer: gatewayd-auth, audience: api }
routes:
  - name: items
    match: { path_prefix: /items/ }
    upstream: up
  - name: guarded
    match: { path_prefix: /guarded/ }
    upstream: up
    plugins: [auth-jwt]
  - name: broken
    match: { path_prefix: /broken/ }
    upstream: down
`

// tracingSection is a tracing: section sending to rcv with ratio.
func tracingSection(rcv *otlptest.Receiver, ratio string) string {
	return "tracing: { otlp_endpoint: \"" + rcv.URL + "\", sample_ratio: " + ratio + ", service_name: gw-test }"
}

// traceGateway builds a gateway from traceConfig with the given tracing
// section ("" for none), in front of up; the configuration is written to a
// file so the test can reload it.
func traceGateway(t testing.TB, up *traceUpstream, section string) (*Gateway, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	writeTraceConfig(t, file, up, section)
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
	t.Cleanup(func() {
		if tr := gw.cur.Load().tracer; tr != nil {
			_ = tr.Shutdown(context.Background())
		}
	})
	return gw, file
}

func writeTraceConfig(t testing.TB, file string, up *traceUpstream, section string) {
	t.Helper()
	body := fmt.Sprintf(traceConfig, section, up.addr, benchSecret)
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveTraced runs one GET through gw.Handle with the given headers
// (name, value pairs) and returns the status.
func serveTraced(gw *Gateway, path string, headers ...string) int {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("gw.example")
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	gw.Handle(&ctx)
	status := ctx.Response.StatusCode()
	ctx.Request.ResetUserValues()
	return status
}

func flushTracer(t testing.TB, gw *Gateway) {
	t.Helper()
	if tr := gw.cur.Load().tracer; tr != nil {
		if err := tr.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func only(t *testing.T, spans []otlptest.Span, name string) otlptest.Span {
	t.Helper()
	found := otlptest.Find(spans, name)
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1: %v", len(found), name, spans)
	}
	return found[0]
}

func wantAttrs(t *testing.T, s otlptest.Span, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := s.Attrs[k]; !ok || got != v {
			t.Errorf("span %q: attribute %s = %q (present %v), want %q", s.Name, k, got, ok, v)
		}
	}
}

// parseTP parses a traceparent the upstream received.
func parseTP(t *testing.T, v string) tracing.SpanContext {
	t.Helper()
	sc, ok := tracing.ParseTraceparent([]byte(v))
	if !ok {
		t.Fatalf("the upstream got an invalid traceparent %q", v)
	}
	return sc
}

func hexOf(b []byte) string { return string(tracing.AppendHex(nil, b)) }

// A sampled client traceparent is the parent of the server span, whatever
// the ratio (0 here); the attempt span is the server span's child, and the
// upstream's traceparent names the attempt span.
func TestTracingSampledParent(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "0"))
	if s := serveTraced(gw, "/items/a", "traceparent", clientSampled, "tracestate", clientTracestate); s != 200 {
		t.Fatalf("status %d", s)
	}
	flushTracer(t, gw)
	spans := rcv.WaitSpans(t, 2, 5*time.Second)
	server := only(t, spans, "items")
	attempt := only(t, spans, "upstream up")

	if server.TraceID != clientTraceID || server.ParentSpanID != clientSpanID {
		t.Errorf("server span trace %s parent %s, want the client's %s %s", server.TraceID, server.ParentSpanID, clientTraceID, clientSpanID)
	}
	if server.Kind.String() != "SPAN_KIND_SERVER" || server.StatusError {
		t.Errorf("server span: %v", server)
	}
	if server.Service != "gw-test" || server.Scope != tracing.InstrumentationName {
		t.Errorf("service %q scope %q", server.Service, server.Scope)
	}
	wantAttrs(t, server, map[string]string{
		"http.request.method": "GET", "gatewayd.route": "items", "http.response.status_code": "200",
		"gatewayd.upstream": "up", "client.address": "127.0.0.1", "url.path": "/items/a",
		"network.protocol.version": "1.1", "http.route": "/items/*",
	})
	if _, ok := server.Attrs["gatewayd.plugin"]; ok {
		t.Errorf("gatewayd.plugin set on a request no plugin answered: %v", server)
	}

	if attempt.TraceID != clientTraceID || attempt.ParentSpanID != server.SpanID {
		t.Errorf("attempt span trace %s parent %s, want %s %s", attempt.TraceID, attempt.ParentSpanID, clientTraceID, server.SpanID)
	}
	if attempt.Kind.String() != "SPAN_KIND_CLIENT" || attempt.StatusError {
		t.Errorf("attempt span: %v", attempt)
	}
	wantAttrs(t, attempt, map[string]string{
		"gatewayd.upstream": "up", "gatewayd.upstream.target": "http://" + up.addr, "server.address": up.addr,
		"gatewayd.upstream.client": "http", "gatewayd.upstream.attempt": "0", "http.response.status_code": "200",
	})
	if attempt.Start.Before(server.Start) || attempt.End.After(server.End) {
		t.Errorf("attempt span [%v, %v] outside the server span [%v, %v]", attempt.Start, attempt.End, server.Start, server.End)
	}

	got := up.last(t)
	want := "00-" + clientTraceID + "-" + attempt.SpanID + "-01"
	if got.traceparent != want {
		t.Errorf("upstream traceparent %q, want %q", got.traceparent, want)
	}
	if got.tracestate != clientTracestate {
		t.Errorf("upstream tracestate %q, want %q", got.tracestate, clientTracestate)
	}
}

// Without a traceparent, a sampled request starts a trace: the server span
// has no parent and the upstream continues the new trace.
func TestTracingNewTrace(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "1"))
	if s := serveTraced(gw, "/items/a"); s != 200 {
		t.Fatalf("status %d", s)
	}
	flushTracer(t, gw)
	spans := rcv.WaitSpans(t, 2, 5*time.Second)
	server := only(t, spans, "items")
	attempt := only(t, spans, "upstream up")
	if server.ParentSpanID != "" || server.TraceID == clientTraceID {
		t.Errorf("server span of a new trace: %v", server)
	}
	if attempt.ParentSpanID != server.SpanID || attempt.TraceID != server.TraceID {
		t.Errorf("attempt span %v is not the child of %v", attempt, server)
	}
	sc := parseTP(t, up.last(t).traceparent)
	if hexOf(sc.TraceID[:]) != server.TraceID || hexOf(sc.SpanID[:]) != attempt.SpanID || !sc.Sampled() {
		t.Errorf("upstream traceparent %q, want trace %s parent %s sampled", up.last(t).traceparent, server.TraceID, attempt.SpanID)
	}
}

// The server span names the plugin that answered, a failed upstream makes
// both spans errors, and a request no route matched is "unmatched".
func TestTracingOutcomes(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "1"))
	if s := serveTraced(gw, "/guarded/x"); s != 401 {
		t.Fatalf("guarded: status %d", s)
	}
	if s := serveTraced(gw, "/broken/x"); s != 502 {
		t.Fatalf("broken: status %d", s)
	}
	if s := serveTraced(gw, "/items/fail"); s != 503 {
		t.Fatalf("items/fail: status %d", s)
	}
	if s := serveTraced(gw, "/nothing/here"); s != 404 {
		t.Fatalf("unmatched: status %d", s)
	}
	flushTracer(t, gw)
	// guarded 1, broken 2, items 2, unmatched 1.
	spans := rcv.WaitSpans(t, 6, 5*time.Second)

	guarded := only(t, spans, "guarded")
	wantAttrs(t, guarded, map[string]string{"gatewayd.plugin": "jwt", "http.response.status_code": "401", "gatewayd.upstream": "up"})
	if guarded.StatusError {
		t.Errorf("a 401 is not a server error: %v", guarded)
	}
	for _, s := range otlptest.Find(spans, "upstream up") {
		if s.TraceID == guarded.TraceID {
			t.Errorf("a refused request has an attempt span: %v", s)
		}
	}

	broken := only(t, spans, "broken")
	brokenAttempt := only(t, spans, "upstream down")
	wantAttrs(t, broken, map[string]string{"http.response.status_code": "502", "gatewayd.upstream": "down"})
	if !broken.StatusError || !brokenAttempt.StatusError {
		t.Errorf("a 502 is an error: %v / %v", broken, brokenAttempt)
	}
	wantAttrs(t, brokenAttempt, map[string]string{"error.type": "transport", "server.address": "127.0.0.1:1"})
	if _, ok := brokenAttempt.Attrs["http.response.status_code"]; ok {
		t.Errorf("a failed attempt has a status: %v", brokenAttempt)
	}
	if brokenAttempt.ParentSpanID != broken.SpanID {
		t.Errorf("attempt %v not the child of %v", brokenAttempt, broken)
	}

	failed := only(t, spans, "items")
	wantAttrs(t, failed, map[string]string{"http.response.status_code": "503"})
	if !failed.StatusError {
		t.Errorf("a 503 is an error: %v", failed)
	}
	var failedAttempt otlptest.Span
	for _, s := range otlptest.Find(spans, "upstream up") {
		if s.ParentSpanID == failed.SpanID {
			failedAttempt = s
		}
	}
	wantAttrs(t, failedAttempt, map[string]string{"http.response.status_code": "503"})

	unmatched := only(t, spans, UnmatchedRoute)
	wantAttrs(t, unmatched, map[string]string{"http.response.status_code": "404", "gatewayd.route": UnmatchedRoute})
	if _, ok := unmatched.Attrs["gatewayd.upstream"]; ok {
		t.Errorf("an unmatched request names an upstream: %v", unmatched)
	}
}

// A request that is not sampled records nothing, and the upstream still
// gets a trace context: the client's trace id and flags with the
// gateway's (unrecorded) span id, or a new trace.
func TestTracingNotSampled(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "0"))

	serveTraced(gw, "/items/a", "traceparent", clientNotSampled, "tracestate", clientTracestate)
	got := up.last(t)
	sc := parseTP(t, got.traceparent)
	if hexOf(sc.TraceID[:]) != clientTraceID || hexOf(sc.SpanID[:]) == clientSpanID || sc.Sampled() {
		t.Errorf("upstream traceparent %q: want trace %s, a new parent id, not sampled", got.traceparent, clientTraceID)
	}
	if got.tracestate != clientTracestate {
		t.Errorf("upstream tracestate %q, want %q", got.tracestate, clientTracestate)
	}

	serveTraced(gw, "/items/a")
	got = up.last(t)
	sc = parseTP(t, got.traceparent)
	if hexOf(sc.TraceID[:]) == clientTraceID || sc.Sampled() || got.tracestate != "" {
		t.Errorf("upstream trace headers %+v: want a new trace, not sampled, no tracestate", got)
	}

	// An invalid traceparent is replaced, and its tracestate dropped.
	serveTraced(gw, "/items/a", "traceparent", strings.ToUpper(clientSampled), "tracestate", clientTracestate)
	got = up.last(t)
	sc = parseTP(t, got.traceparent)
	if hexOf(sc.TraceID[:]) == clientTraceID || got.tracestate != "" {
		t.Errorf("upstream trace headers %+v: want a new trace without tracestate", got)
	}

	flushTracer(t, gw)
	if spans := rcv.Spans(); len(spans) != 0 {
		t.Fatalf("spans of unsampled requests were exported: %v", spans)
	}
}

// With tracing off the trace headers reach the upstream exactly as the
// client sent them (valid or not), and nothing is exported.
func TestTracingOffPropagates(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, "")
	if gw.cur.Load().tracer != nil {
		t.Fatal("a tracer without a tracing: section")
	}
	for _, tp := range []string{clientSampled, clientNotSampled, "not-a-traceparent"} {
		serveTraced(gw, "/items/a", "traceparent", tp, "tracestate", clientTracestate)
		if got := up.last(t); got.traceparent != tp || got.tracestate != clientTracestate {
			t.Errorf("upstream got %+v, want %q and %q", got, tp, clientTracestate)
		}
	}
	serveTraced(gw, "/items/a")
	if got := up.last(t); got.traceparent != "" || got.tracestate != "" {
		t.Errorf("upstream got %+v, want no trace headers", got)
	}
	if n := rcv.Requests(); n != 0 {
		t.Fatalf("%d export requests with tracing off", n)
	}
}

// Tracing turns on, changes and turns off on reload; the old exporter's
// spans are flushed once its generation retired.
func TestTracingReload(t *testing.T) {
	rcv1, rcv2 := otlptest.Start(t), otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, file := traceGateway(t, up, "")

	writeTraceConfig(t, file, up, tracingSection(rcv1, "1"))
	res, err := gw.Reload()
	if err != nil || !res.Tracing {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	serveTraced(gw, "/items/a", "traceparent", clientSampled)

	// A new endpoint: the old tracer's span is exported when it retires.
	writeTraceConfig(t, file, up, tracingSection(rcv2, "1"))
	if res, err = gw.Reload(); err != nil || !res.Tracing {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	first := rcv1.WaitSpans(t, 2, 15*time.Second)
	only(t, first, "items")
	serveTraced(gw, "/items/b")

	writeTraceConfig(t, file, up, "")
	if res, err = gw.Reload(); err != nil || !res.Tracing {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	second := rcv2.WaitSpans(t, 2, 15*time.Second)
	if s := only(t, second, "items"); s.Attrs["url.path"] != "/items/b" {
		t.Errorf("second endpoint got %v", s)
	}
	if gw.cur.Load().tracer != nil {
		t.Fatal("tracing still on after the section was removed")
	}
	serveTraced(gw, "/items/c", "traceparent", clientSampled)
	if got := up.last(t).traceparent; got != clientSampled {
		t.Errorf("after tracing off the upstream got %q, want the client's", got)
	}
	gw.retiring.Wait()
	if n := len(rcv1.Spans()) + len(rcv2.Spans()); n != 4 {
		t.Errorf("%d spans exported, want 4", n)
	}

	// An unchanged section keeps its tracer.
	writeTraceConfig(t, file, up, tracingSection(rcv1, "1")+"\n# comment")
	if _, err = gw.Reload(); err != nil {
		t.Fatal(err)
	}
	tr := gw.cur.Load().tracer
	writeTraceConfig(t, file, up, tracingSection(rcv1, "1")+"\n# another comment")
	if res, err = gw.Reload(); err != nil || res.Tracing || gw.cur.Load().tracer != tr {
		t.Fatalf("an unchanged tracing section was rebuilt: %+v, %v", res, err)
	}
}

// A client cannot strip the gateway's traceparent by naming it in
// Connection: hop-by-hop removal runs before the trace context is set.
func TestTracingConnectionHeaderCannotDropTraceparent(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "0"))
	serveTraced(gw, "/items/a", "Connection", "traceparent, tracestate", "traceparent", clientSampled, "tracestate", clientTracestate)
	got := up.last(t)
	sc := parseTP(t, got.traceparent)
	if hexOf(sc.TraceID[:]) == clientTraceID || got.tracestate != "" {
		t.Errorf("upstream got %+v: the hop-by-hop trace headers should be gone and a new trace started", got)
	}
}
