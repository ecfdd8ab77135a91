package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/tracing"
)

const (
	e2eTraceID     = "0af7651916cd43dd8448eb211c80319c"
	e2eSpanID      = "b7ad6b7169203331"
	e2eTraceparent = "00-" + e2eTraceID + "-" + e2eSpanID + "-01"
	e2eTracestate  = "vendor=opaque-value"
)

const tracingConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: true }
server: { shutdown_timeout: 10s }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: echo-route
    match: { path_prefix: /echo/ }
    upstream: echo
%s
`

// accessLines returns the access log lines of the process, decoded.
func accessLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"access"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// The real binary exports a server span per request, parented by the
// client's traceparent, and an attempt span per upstream attempt, which
// the upstream's traceparent names; the queued spans are exported at
// shutdown, and the access line carries the trace id.
func TestTracingExportsSpans(t *testing.T) {
	rcv := otlptest.Start(t)
	echoAddr := startEcho(t, "echo")
	section := fmt.Sprintf("tracing: { otlp_endpoint: %q, sample_ratio: 0, service_name: e2e-gateway }", rcv.URL)
	gw := gatewaytest.Start(t, fmt.Sprintf(tracingConfig, echoAddr, section))

	r := do(t, "GET", gw.URL("/echo/sampled"), map[string]string{"traceparent": e2eTraceparent, "tracestate": e2eTracestate}, "")
	sampled := decodeEcho(t, r)
	// sample_ratio 0: a request without a traceparent is not recorded,
	// but the upstream still gets a trace context.
	r = do(t, "GET", gw.URL("/echo/unsampled"), nil, "")
	unsampled := decodeEcho(t, r)

	// The default batch delay is 5s: the spans leave at shutdown.
	gw.Signal(syscall.SIGTERM)
	if code, err := gw.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	spans := rcv.WaitSpans(t, 2, 5*time.Second)
	if len(spans) != 2 {
		t.Fatalf("%d spans, want the sampled request's 2: %v", len(spans), spans)
	}
	server := otlptest.Find(spans, "echo-route")
	attempt := otlptest.Find(spans, "upstream echo")
	if len(server) != 1 || len(attempt) != 1 {
		t.Fatalf("want one server and one attempt span: %v", spans)
	}
	s, a := server[0], attempt[0]
	if s.TraceID != e2eTraceID || s.ParentSpanID != e2eSpanID || s.Service != "e2e-gateway" {
		t.Errorf("server span %v (service %q): want trace %s parent %s", s, s.Service, e2eTraceID, e2eSpanID)
	}
	for k, v := range map[string]string{"http.request.method": "GET", "gatewayd.route": "echo-route", "http.response.status_code": "200", "gatewayd.upstream": "echo", "client.address": "127.0.0.1"} {
		if s.Attrs[k] != v {
			t.Errorf("server span %s = %q, want %q", k, s.Attrs[k], v)
		}
	}
	if a.TraceID != e2eTraceID || a.ParentSpanID != s.SpanID || a.Attrs["server.address"] != echoAddr || a.Attrs["http.response.status_code"] != "200" {
		t.Errorf("attempt span %v: want the child of %s to %s", a, s.SpanID, echoAddr)
	}
	if got, want := header(sampled, "traceparent"), "00-"+e2eTraceID+"-"+a.SpanID+"-01"; got != want {
		t.Errorf("upstream traceparent %q, want %q", got, want)
	}
	if got := header(sampled, "tracestate"); got != e2eTracestate {
		t.Errorf("upstream tracestate %q, want %q", got, e2eTracestate)
	}
	sc, ok := tracing.ParseTraceparent([]byte(header(unsampled, "traceparent")))
	if !ok || sc.Sampled() {
		t.Errorf("unsampled request: upstream traceparent %q, want a valid, unsampled one", header(unsampled, "traceparent"))
	}

	lines := accessLines(t, gw.Logs())
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2:\n%s", len(lines), gw.Logs())
	}
	if lines[0]["trace_id"] != e2eTraceID || lines[0]["protocol"] != "http/1.1" || lines[0]["upstream_addr"] != echoAddr {
		t.Errorf("sampled request's access line: %v", lines[0])
	}
	if id := string(tracing.AppendHex(nil, sc.TraceID[:])); lines[1]["trace_id"] != id {
		t.Errorf("unsampled request's access line trace_id %v, want the upstream's %s", lines[1]["trace_id"], id)
	}
}

// With tracing off the trace headers pass through untouched and nothing is
// exported, even with the SDK's endpoint variable set; a reload turns
// tracing on.
func TestTracingOffThenReloaded(t *testing.T) {
	rcv := otlptest.Start(t)
	echoAddr := startEcho(t, "echo")
	gw := gatewaytest.Start(t, fmt.Sprintf(tracingConfig, echoAddr, ""), gatewaytest.Options{
		Env: []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL, "OTEL_BSP_SCHEDULE_DELAY=50"},
	})
	for _, tp := range []string{e2eTraceparent, "00-" + e2eTraceID + "-" + e2eSpanID + "-00", "garbage"} {
		e := decodeEcho(t, do(t, "GET", gw.URL("/echo/off"), map[string]string{"traceparent": tp, "tracestate": e2eTracestate}, ""))
		if header(e, "traceparent") != tp || header(e, "tracestate") != e2eTracestate {
			t.Errorf("tracing off: upstream got traceparent %q tracestate %q, want %q %q", header(e, "traceparent"), header(e, "tracestate"), tp, e2eTracestate)
		}
	}
	e := decodeEcho(t, do(t, "GET", gw.URL("/echo/off"), nil, ""))
	if header(e, "traceparent") != "" {
		t.Errorf("tracing off: the upstream got a traceparent the client did not send: %q", header(e, "traceparent"))
	}

	section := fmt.Sprintf("tracing: { otlp_endpoint: %q, sample_ratio: 1 }", rcv.URL)
	gw.WriteConfig(fmt.Sprintf(tracingConfig, echoAddr, section))
	gw.Signal(syscall.SIGHUP)
	if !gw.WaitLog("tracing changed", 10*time.Second) {
		t.Fatal("no reload with tracing changed")
	}
	if n := rcv.Requests(); n != 0 {
		t.Fatalf("%d export requests while tracing was off", n)
	}
	e = decodeEcho(t, do(t, "GET", gw.URL("/echo/on"), map[string]string{"traceparent": e2eTraceparent}, ""))
	// OTEL_BSP_SCHEDULE_DELAY=50ms: exported without waiting for shutdown.
	spans := rcv.WaitSpans(t, 2, 10*time.Second)
	s := otlptest.Find(spans, "echo-route")
	if len(s) != 1 || s[0].ParentSpanID != e2eSpanID || s[0].Service != "gatewayd" {
		t.Fatalf("after the reload: %v", spans)
	}
	if sc, ok := tracing.ParseTraceparent([]byte(header(e, "traceparent"))); !ok || string(tracing.AppendHex(nil, sc.TraceID[:])) != e2eTraceID || string(tracing.AppendHex(nil, sc.SpanID[:])) == e2eSpanID {
		t.Errorf("after the reload the upstream got %q", header(e, "traceparent"))
	}
}
