package gateway

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// lockedBuffer collects log output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// logGateway builds a gateway from traceConfig with the access log on,
// logging JSON lines without times to the returned buffer.
func logGateway(t *testing.T, up *traceUpstream, logSection, tracingSection string) (*Gateway, *lockedBuffer) {
	t.Helper()
	body := fmt.Sprintf(traceConfig, tracingSection, up.addr, benchSecret)
	body = strings.Replace(body, "log: { access_log: false }", logSection, 1)
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "gateway.yaml"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	buf := &lockedBuffer{}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = ""
	enc.EncodeDuration = zapcore.SecondsDurationEncoder
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(buf), zap.InfoLevel))
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: logger, Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if tr := gw.cur.Load().tracer; tr != nil {
			_ = tr.Shutdown(context.Background())
		}
	})
	return gw, buf
}

// serveRequest runs one request through gw.Handle.
func serveRequest(gw *Gateway, method, uri, body string, headers ...string) int {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("api.example")
	ctx.Request.Header.SetUserAgent("golden-client/1.0")
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	gw.Handle(&ctx)
	status := ctx.Response.StatusCode()
	ctx.Request.ResetUserValues()
	return status
}

var (
	positiveDuration = regexp.MustCompile(`"(duration|upstream_duration)":([0-9.e-]+)`)
	randomTraceID    = regexp.MustCompile(`"trace_id":"[0-9a-f]{32}"`)
)

// normalise replaces what changes from run to run: positive durations,
// the upstream's port, trace ids the gateway drew (not the client's).
func normalise(lines, upstream string) string {
	lines = positiveDuration.ReplaceAllStringFunc(lines, func(m string) string {
		sub := positiveDuration.FindStringSubmatch(m)
		if sub[2] == "0" {
			return m
		}
		return `"` + sub[1] + `":"<positive>"`
	})
	lines = strings.ReplaceAll(lines, upstream, "<upstream>")
	return randomTraceID.ReplaceAllStringFunc(lines, func(m string) string {
		if strings.Contains(m, clientTraceID) {
			return m
		}
		return `"trace_id":"<new trace id>"`
	})
}

// TestAccessLogGolden checks every access log field: a proxied request, a
// request a plugin refused, one no route matched, one whose upstream is
// down, with and without access_log_query, with tracing off and on.
func TestAccessLogGolden(t *testing.T) {
	up := newTraceUpstream(t)
	rcv := otlptest.Start(t)
	var out strings.Builder
	tests := []struct {
		name    string
		log     string
		tracing string
	}{
		{name: "tracing off, no query", log: "log: { access_log: true }"},
		{name: "tracing off, access_log_query", log: "log: { access_log: true, access_log_query: true }"},
		{name: "tracing on", log: "log: { access_log: true }", tracing: tracingSection(rcv, "1")},
	}
	for _, tt := range tests {
		gw, buf := logGateway(t, up, tt.log, tt.tracing)
		want := []struct {
			status int
			method string
			uri    string
			body   string
			hdrs   []string
		}{
			{200, "POST", "/items/a?token=s3cret&x=1", "hello", []string{"X-Request-ID", "req-proxied", "traceparent", clientSampled}},
			{401, "GET", "/guarded/x?q=1", "", []string{"X-Request-ID", "req-refused"}},
			{404, "GET", "/nothing?q=1", "", []string{"X-Request-ID", "req-unmatched"}},
			{502, "GET", "/broken/x", "", []string{"X-Request-ID", "req-down", "traceparent", clientNotSampled}},
			{503, "HEAD", "/items/fail", "", []string{"X-Request-ID", "req-failing"}},
		}
		for _, r := range want {
			if s := serveRequest(gw, r.method, r.uri, r.body, r.hdrs...); s != r.status {
				t.Fatalf("%s: %s %s: status %d, want %d", tt.name, r.method, r.uri, s, r.status)
			}
		}
		var access []string
		for _, line := range strings.Split(buf.String(), "\n") {
			if strings.Contains(line, `"logger":"access"`) || strings.Contains(line, `"msg":"upstream request failed"`) {
				access = append(access, line)
			}
		}
		fmt.Fprintf(&out, "# %s\n%s\n", tt.name, normalise(strings.Join(access, "\n"), up.addr))
	}
	golden(t, "testdata/access_log.golden", out.String())
}
