package tracing

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/config"
)

func TestParseTraceparent(t *testing.T) {
	const (
		trace = "4bf92f3577b34da6a3ce929d0e0e4736"
		span  = "00f067aa0ba902b7"
	)
	tests := []struct {
		name        string
		give        string
		wantOK      bool
		wantSampled bool
	}{
		{name: "sampled", give: "00-" + trace + "-" + span + "-01", wantOK: true, wantSampled: true},
		{name: "not sampled", give: "00-" + trace + "-" + span + "-00", wantOK: true},
		{name: "other flags kept", give: "00-" + trace + "-" + span + "-03", wantOK: true, wantSampled: true},
		{name: "future version with more fields", give: "01-" + trace + "-" + span + "-01-extra", wantOK: true, wantSampled: true},
		{name: "future version exact", give: "cc-" + trace + "-" + span + "-00", wantOK: true},
		{name: "version 00 too long", give: "00-" + trace + "-" + span + "-01-extra"},
		{name: "future version bad separator", give: "01-" + trace + "-" + span + "-01x"},
		{name: "version ff", give: "ff-" + trace + "-" + span + "-01"},
		{name: "upper case", give: "00-4BF92F3577B34DA6A3CE929D0E0E4736-" + span + "-01"},
		{name: "zero trace id", give: "00-00000000000000000000000000000000-" + span + "-01"},
		{name: "zero span id", give: "00-" + trace + "-0000000000000000-01"},
		{name: "short", give: "00-" + trace + "-" + span + "-1"},
		{name: "bad separators", give: "00_" + trace + "_" + span + "_01"},
		{name: "non-hex flags", give: "00-" + trace + "-" + span + "-zz"},
		{name: "empty", give: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := ParseTraceparent([]byte(tt.give))
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if sc.Sampled() != tt.wantSampled {
				t.Errorf("sampled = %v, want %v", sc.Sampled(), tt.wantSampled)
			}
			if got := string(AppendHex(nil, sc.TraceID[:])); got != trace {
				t.Errorf("trace id %s", got)
			}
			if got := string(AppendHex(nil, sc.SpanID[:])); got != span {
				t.Errorf("span id %s", got)
			}
		})
	}
}

func TestAppendTraceparentRoundTrip(t *testing.T) {
	sc := SpanContext{TraceID: NewTraceID(), SpanID: NewSpanID(), Flags: FlagSampled}
	b := AppendTraceparent(nil, sc)
	if len(b) != TraceparentLen {
		t.Fatalf("%q: length %d", b, len(b))
	}
	got, ok := ParseTraceparent(b)
	if !ok || got != sc {
		t.Fatalf("round trip of %q: %+v, %v", b, got, ok)
	}
}

func TestTraceparentZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, TraceparentLen)
	in := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if n := testing.AllocsPerRun(100, func() {
		sc, _ := ParseTraceparent(in)
		sc.SpanID = NewSpanID()
		buf = AppendTraceparent(buf[:0], sc)
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func TestSampleNew(t *testing.T) {
	tests := []struct {
		give     float64
		min, max int // of 10000 draws
	}{
		{give: 0, min: 0, max: 0},
		{give: 1, min: 10000, max: 10000},
		{give: 0.1, min: 800, max: 1200},
		{give: 0.5, min: 4700, max: 5300},
	}
	for _, tt := range tests {
		tr, err := New(&config.Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: tt.give, ServiceName: "t"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range 10000 {
			if tr.SampleNew() {
				n++
			}
		}
		if n < tt.min || n > tt.max {
			t.Errorf("ratio %v: %d of 10000 sampled, want %d..%d", tt.give, n, tt.min, tt.max)
		}
		_ = tr.Shutdown(t.Context())
	}
}

func TestNewEndpoints(t *testing.T) {
	for _, ep := range []string{"http://127.0.0.1:4318", "https://127.0.0.1:4318/custom/path", "grpc://127.0.0.1:4317", "grpcs://127.0.0.1:4317", "http://user:secret@127.0.0.1:4318"} {
		tr, err := New(&config.Tracing{OTLPEndpoint: ep, SampleRatio: 1, ServiceName: "t"}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", ep, err)
		}
		if got := tr.Endpoint(); got != config.RedactURL(ep) {
			t.Errorf("Endpoint() = %q", got)
		}
		_ = tr.Shutdown(t.Context())
	}
	if _, err := New(&config.Tracing{OTLPEndpoint: "ftp://127.0.0.1:21", SampleRatio: 1, ServiceName: "t"}, Options{}); err == nil {
		t.Error("ftp:// accepted")
	}
}

// The exporter sends OTLP/HTTP protobuf to the collector with the
// configured headers, and URL credentials as Basic authentication.
func TestExportHeaders(t *testing.T) {
	rcv := otlptest.Start(t)
	ep := strings.Replace(rcv.URL, "http://", "http://user:secret@", 1)
	tr, err := New(&config.Tracing{OTLPEndpoint: ep, SampleRatio: 1, ServiceName: "svc", Headers: map[string]string{"X-Api-Key": "k1"}}, Options{Version: "v9"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(t.Context(), "op")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.WaitSpans(t, 1, 5*time.Second)
	if spans[0].Name != "op" || spans[0].Service != "svc" {
		t.Errorf("got %v (service %q)", spans[0], spans[0].Service)
	}
	h := rcv.Headers()[0]
	if got := h.Get("X-Api-Key"); got != "k1" {
		t.Errorf("X-Api-Key %q", got)
	}
	if got := h.Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("user:secret")) {
		t.Errorf("Authorization %q", got)
	}
	if strings.Contains(tr.Endpoint(), "secret") {
		t.Errorf("Endpoint() shows the password: %s", tr.Endpoint())
	}
}
