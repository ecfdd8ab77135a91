// Package otlptest is an OTLP/HTTP trace receiver for tests: an HTTP server
// on loopback that accepts POST /v1/traces with a protobuf
// ExportTraceServiceRequest, as a collector does, and keeps the spans.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, its ids in hex and its attribute values as
// strings.
type Span struct {
	Name         string
	TraceID      string
	SpanID       string
	ParentSpanID string
	Kind         tracepb.Span_SpanKind
	Attrs        map[string]string
	// StatusError says the span's status is error; StatusMessage is its
	// description.
	StatusError   bool
	StatusMessage string
	// Service is the service.name resource attribute; Scope the
	// instrumentation scope's name.
	Service string
	Scope   string
	Start   time.Time
	End     time.Time
}

// String summarises the span for test failures.
func (s Span) String() string {
	keys := make([]string, 0, len(s.Attrs))
	for k := range s.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s trace=%s span=%s parent=%s kind=%s error=%v", s.Name, s.TraceID, s.SpanID, s.ParentSpanID, s.Kind, s.StatusError)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, s.Attrs[k])
	}
	return b.String()
}

// Receiver is a running OTLP/HTTP trace receiver.
type Receiver struct {
	// URL is the receiver's base URL (http://127.0.0.1:PORT), the value of
	// tracing.otlp_endpoint.
	URL string

	// discard: answer without decoding (benchmarks: the receiver's work
	// is not the exporter's).
	discard bool

	mu       sync.Mutex
	spans    []Span
	requests int
	headers  []http.Header
	changed  chan struct{}
}

// Start starts a receiver on a free loopback port; it stops when the test
// ends.
func Start(tb testing.TB) *Receiver {
	tb.Helper()
	return start(tb, false)
}

// StartDiscarding starts a receiver that reads each export request and
// answers it without decoding or keeping anything, for benchmarks.
func StartDiscarding(tb testing.TB) *Receiver {
	tb.Helper()
	return start(tb, true)
}

func start(tb testing.TB, discard bool) *Receiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String(), changed: make(chan struct{}), discard: discard}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return r
}

// ServeHTTP implements http.Handler: POST /v1/traces.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	if r.discard {
		_, _ = io.Copy(io.Discard, body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		return
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range msg.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, Span{
					Name:          s.GetName(),
					TraceID:       hex.EncodeToString(s.GetTraceId()),
					SpanID:        hex.EncodeToString(s.GetSpanId()),
					ParentSpanID:  hex.EncodeToString(s.GetParentSpanId()),
					Kind:          s.GetKind(),
					Attrs:         attrs(s.GetAttributes()),
					StatusError:   s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					StatusMessage: s.GetStatus().GetMessage(),
					Service:       service,
					Scope:         ss.GetScope().GetName(),
					Start:         time.Unix(0, int64(s.GetStartTimeUnixNano())),
					End:           time.Unix(0, int64(s.GetEndTimeUnixNano())),
				})
			}
		}
	}
	resp, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.requests++
	r.headers = append(r.headers, req.Header.Clone())
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return v.String()
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests returns how many export requests arrived.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Headers returns the headers of each export request.
func (r *Receiver) Headers() []http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]http.Header(nil), r.headers...)
}

// WaitSpans waits until at least n spans arrived and returns them all; it
// fails the test after timeout.
func (r *Receiver) WaitSpans(tb testing.TB, n int, timeout time.Duration) []Span {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		if len(r.spans) >= n {
			spans := append([]Span(nil), r.spans...)
			r.mu.Unlock()
			return spans
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("otlptest: %d spans after %s, want at least %d: %v", len(r.Spans()), timeout, n, r.Spans())
			return nil
		}
	}
}

// Find returns the received spans named name.
func Find(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}
