package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A WebSocket handshake has a server span and a "websocket" attempt span;
// its access line says protocol ws, and so does the tunnel's close line,
// with the trace id, host and upstream address.
func TestTracingWebSocket(t *testing.T) {
	upAddr, stop := switchingUpstream(t)
	defer stop()
	rcv := otlptest.Start(t)
	body := fmt.Sprintf(`
log: { access_log: true }
tracing: { otlp_endpoint: %q, sample_ratio: 0 }
upstreams:
  up: { targets: ["http://%s"] }
routes:
  - name: chat
    match: { path_prefix: / }
    upstream: up
    websocket: true
`, rcv.URL, upAddr)
	cfg, err := config.Parse("ws.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	buf := &lockedBuffer{}
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(buf), zap.InfoLevel))
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: logger, Store: st, Version: "test"})
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
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ln, adminLn) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hs := strings.Replace(handshake, "Host: gw\r\n", "Host: gw\r\ntraceparent: "+clientSampled+"\r\nUser-Agent: ws-client\r\n", 1)
	if _, err := io.WriteString(c, hs+"ping"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
		t.Fatalf("tunnel echo %q, %v", echo, err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "websocket tunnel closed") {
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel close line:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := gw.Shutdown(0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	<-done

	var handshakeLine, closeLine map[string]any
	for _, line := range strings.Split(buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["logger"] != "access" {
			continue
		}
		switch m["msg"] {
		case "access":
			handshakeLine = m
		case "websocket tunnel closed":
			closeLine = m
		}
	}
	for k, v := range map[string]any{"protocol": "ws", "status": 101.0, "trace_id": clientTraceID, "host": "gw", "upstream_addr": upAddr, "upstream_status": 101.0, "user_agent": "ws-client"} {
		if handshakeLine[k] != v {
			t.Errorf("handshake line %s = %v, want %v (%v)", k, handshakeLine[k], v, handshakeLine)
		}
	}
	for k, v := range map[string]any{"protocol": "ws", "trace_id": clientTraceID, "host": "gw", "upstream_addr": upAddr, "user_agent": "ws-client", "bytes_in": 4.0, "bytes_out": 4.0} {
		if closeLine[k] != v {
			t.Errorf("close line %s = %v, want %v (%v)", k, closeLine[k], v, closeLine)
		}
	}

	// Shutdown flushed the spans.
	spans := rcv.WaitSpans(t, 2, 5*time.Second)
	server := only(t, spans, "chat")
	attempt := only(t, spans, "upstream up")
	wantAttrs(t, server, map[string]string{"http.response.status_code": "101", "gatewayd.route": "chat"})
	wantAttrs(t, attempt, map[string]string{"gatewayd.upstream.client": "websocket", "http.response.status_code": "101", "server.address": upAddr})
	if server.ParentSpanID != clientSpanID || attempt.ParentSpanID != server.SpanID {
		t.Errorf("span parents: server %v, attempt %v", server, attempt)
	}
}

// A traceparent that says not sampled is never recorded, even at ratio 1.
func TestTracingUnsampledParentAtRatioOne(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newTraceUpstream(t)
	gw, _ := traceGateway(t, up, tracingSection(rcv, "1"))
	for range 20 {
		serveTraced(gw, "/items/a", "traceparent", clientNotSampled)
	}
	flushTracer(t, gw)
	if spans := rcv.Spans(); len(spans) != 0 {
		t.Fatalf("an unsampled parent was recorded: %v", spans)
	}
	sc := parseTP(t, up.last(t).traceparent)
	if hexOf(sc.TraceID[:]) != clientTraceID || sc.Sampled() {
		t.Errorf("upstream traceparent %q", up.last(t).traceparent)
	}
}
