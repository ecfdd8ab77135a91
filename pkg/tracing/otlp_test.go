package tracing

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func mustTraceState(t *testing.T, s string) trace.TraceState {
	t.Helper()
	ts, err := trace.ParseTraceState(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// stubSpans are spans with every field the encoder writes: two resources,
// two scopes on one of them, every attribute type, events, links, a remote
// parent with a tracestate, an error status and dropped counts.
func stubSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	res1 := resource.NewSchemaless(attribute.String("service.name", "gw"), attribute.String("service.version", "1.2.3"))
	res2 := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "other"))
	scope1 := instrumentation.Scope{Name: "gatewayd", Version: "v1"}
	scope2 := instrumentation.Scope{Name: "second", SchemaURL: "https://example.com/s", Attributes: attribute.NewSet(attribute.Bool("x", true))}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	psid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	lsid, _ := trace.SpanIDFromHex("1111111111111111")
	start := time.Unix(1700000000, 123456789)
	ts := mustTraceState(t, "vendor=a,other=b")
	stubs := tracetest.SpanStubs{
		{
			Name:        "GET bench",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, TraceState: ts}),
			Parent:      trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid, TraceFlags: trace.FlagsSampled, Remote: true}),
			SpanKind:    trace.SpanKindServer,
			StartTime:   start,
			EndTime:     start.Add(1500 * time.Microsecond),
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.String("empty", ""),
				attribute.Int64("http.response.status_code", 200),
				attribute.Int64("negative", -42),
				attribute.Bool("ok", true),
				attribute.Bool("no", false),
				attribute.Float64("ratio", 0.25),
				attribute.StringSlice("ss", []string{"a", "", "c"}),
				attribute.Int64Slice("is", []int64{1, -2, 3}),
				attribute.BoolSlice("bs", []bool{true, false}),
				attribute.Float64Slice("fs", []float64{1.5, -0.5}),
			},
			Events: []sdktrace.Event{{
				Name: "retry", Time: start.Add(time.Millisecond),
				Attributes: []attribute.KeyValue{attribute.Int("attempt", 2)}, DroppedAttributeCount: 1,
			}},
			Links: []sdktrace.Link{{
				SpanContext:           trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: lsid, Remote: true, TraceState: ts}),
				Attributes:            []attribute.KeyValue{attribute.String("why", "batch")},
				DroppedAttributeCount: 3,
			}},
			Status:               sdktrace.Status{Code: codes.Error, Description: "upstream timeout"},
			DroppedAttributes:    4,
			DroppedEvents:        5,
			DroppedLinks:         6,
			Resource:             res1,
			InstrumentationScope: scope1,
		},
		{
			Name:                 "upstream attempt",
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid}),
			SpanKind:             trace.SpanKindClient,
			StartTime:            start,
			EndTime:              start.Add(time.Millisecond),
			Status:               sdktrace.Status{Code: codes.Ok},
			Resource:             res1,
			InstrumentationScope: scope2,
		},
		{
			Name:                 "elsewhere",
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: lsid}),
			StartTime:            start,
			EndTime:              start,
			Resource:             res2,
			InstrumentationScope: scope1,
		},
		{
			Name:                 "GET second",
			SpanContext:          trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: lsid, TraceFlags: trace.FlagsSampled}),
			Parent:               trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}),
			SpanKind:             trace.SpanKindInternal,
			StartTime:            start,
			EndTime:              start,
			Resource:             res1,
			InstrumentationScope: scope1,
		},
	}
	return stubs.Snapshots()
}

func kvs(t *testing.T, in []*commonpb.KeyValue) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range in {
		m[kv.GetKey()] = kv.GetValue().String()
	}
	return m
}

// What appendRequest writes decodes, with the generated OTLP types, to the
// spans it was given, field by field.
func TestEncodeDecodesAsOTLP(t *testing.T) {
	spans := stubSpans(t)
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(appendRequest(nil, spans), &req); err != nil {
		t.Fatal(err)
	}
	rss := req.GetResourceSpans()
	if len(rss) != 2 {
		t.Fatalf("%d resource spans, want 2 (one per resource)", len(rss))
	}
	if got := kvs(t, rss[0].GetResource().GetAttributes()); len(got) != 2 || !strings.Contains(got["service.name"], `"gw"`) {
		t.Errorf("resource 1 attributes %v", got)
	}
	if rss[1].GetSchemaUrl() != "https://opentelemetry.io/schemas/1.26.0" || rss[0].GetSchemaUrl() != "" {
		t.Errorf("schema urls %q %q", rss[0].GetSchemaUrl(), rss[1].GetSchemaUrl())
	}
	scopes := rss[0].GetScopeSpans()
	if len(scopes) != 2 || scopes[0].GetScope().GetName() != "gatewayd" || scopes[0].GetScope().GetVersion() != "v1" ||
		scopes[1].GetScope().GetName() != "second" || scopes[1].GetSchemaUrl() != "https://example.com/s" ||
		len(scopes[1].GetScope().GetAttributes()) != 1 {
		t.Fatalf("scopes %v", scopes)
	}
	if n := len(scopes[0].GetSpans()); n != 2 {
		t.Fatalf("%d spans in the first scope, want 2 (in their order)", n)
	}
	s := scopes[0].GetSpans()[0]
	if hex.EncodeToString(s.GetTraceId()) != "0af7651916cd43dd8448eb211c80319c" || hex.EncodeToString(s.GetSpanId()) != "b7ad6b7169203331" ||
		hex.EncodeToString(s.GetParentSpanId()) != "00f067aa0ba902b7" || s.GetTraceState() != "vendor=a,other=b" {
		t.Errorf("ids: %v", s)
	}
	if s.GetName() != "GET bench" || s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("name %q kind %v", s.GetName(), s.GetKind())
	}
	if s.GetStartTimeUnixNano() != 1700000000123456789 || s.GetEndTimeUnixNano() != 1700000000123456789+1500000 {
		t.Errorf("times %d %d", s.GetStartTimeUnixNano(), s.GetEndTimeUnixNano())
	}
	want := map[string]string{
		"http.request.method":       `string_value:"GET"`,
		"empty":                     `string_value:""`,
		"http.response.status_code": `int_value:200`,
		"negative":                  `int_value:-42`,
		"ok":                        `bool_value:true`,
		"no":                        `bool_value:false`,
		"ratio":                     `double_value:0.25`,
		"ss":                        `array_value:{values:{string_value:"a"} values:{string_value:""} values:{string_value:"c"}}`,
		"is":                        `array_value:{values:{int_value:1} values:{int_value:-2} values:{int_value:3}}`,
		"bs":                        `array_value:{values:{bool_value:true} values:{bool_value:false}}`,
		"fs":                        `array_value:{values:{double_value:1.5} values:{double_value:-0.5}}`,
	}
	got := kvs(t, s.GetAttributes())
	for k, v := range want {
		// prototext separates fields with one or two spaces at random.
		if g := strings.Join(strings.Fields(got[k]), " "); g != v {
			t.Errorf("attribute %s = %s, want %s", k, g, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d attributes, want %d", len(got), len(want))
	}
	if s.GetDroppedAttributesCount() != 4 || s.GetDroppedEventsCount() != 5 || s.GetDroppedLinksCount() != 6 {
		t.Errorf("dropped %d %d %d", s.GetDroppedAttributesCount(), s.GetDroppedEventsCount(), s.GetDroppedLinksCount())
	}
	if ev := s.GetEvents(); len(ev) != 1 || ev[0].GetName() != "retry" || ev[0].GetTimeUnixNano() != 1700000000124456789 ||
		len(ev[0].GetAttributes()) != 1 || ev[0].GetDroppedAttributesCount() != 1 {
		t.Errorf("events %v", ev)
	}
	if ln := s.GetLinks(); len(ln) != 1 || hex.EncodeToString(ln[0].GetSpanId()) != "1111111111111111" || ln[0].GetTraceState() != "vendor=a,other=b" ||
		len(ln[0].GetAttributes()) != 1 || ln[0].GetDroppedAttributesCount() != 3 || ln[0].GetFlags() != flagsHasIsRemote|flagsIsRemote {
		t.Errorf("links %v", ln)
	}
	if st := s.GetStatus(); st.GetCode() != tracepb.Status_STATUS_CODE_ERROR || st.GetMessage() != "upstream timeout" {
		t.Errorf("status %v", st)
	}
	if s.GetFlags() != 0x01|flagsHasIsRemote|flagsIsRemote {
		t.Errorf("flags %#x: sampled, remote parent", s.GetFlags())
	}

	second := scopes[0].GetSpans()[1]
	if second.GetName() != "GET second" || second.GetKind() != tracepb.Span_SPAN_KIND_INTERNAL || second.GetFlags() != 0x01|flagsHasIsRemote ||
		hex.EncodeToString(second.GetParentSpanId()) != "b7ad6b7169203331" || second.GetStatus() != nil {
		t.Errorf("second span %v", second)
	}
	client := scopes[1].GetSpans()[0]
	if client.GetKind() != tracepb.Span_SPAN_KIND_CLIENT || client.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_OK ||
		len(client.GetParentSpanId()) != 0 || client.GetFlags() != flagsHasIsRemote {
		t.Errorf("client span %v", client)
	}
	if other := rss[1].GetScopeSpans(); len(other) != 1 || other[0].GetSpans()[0].GetName() != "elsewhere" ||
		other[0].GetSpans()[0].GetKind() != tracepb.Span_SPAN_KIND_UNSPECIFIED {
		t.Errorf("second resource %v", other)
	}
}

// httpCollector answers each export with the next of its answers (the
// last one repeats), recording the bodies.
type httpCollector struct {
	answers []func(http.ResponseWriter)
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func (c *httpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	i := min(len(c.bodies), len(c.answers)-1)
	c.bodies = append(c.bodies, body)
	c.headers = append(c.headers, r.Header.Clone())
	c.mu.Unlock()
	c.answers[i](w)
}

func (c *httpCollector) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

func answer(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

func startHTTPCollector(t *testing.T, answers ...func(http.ResponseWriter)) (*httpCollector, *url.URL) {
	t.Helper()
	c := &httpCollector{answers: answers}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return c, u
}

// An export that meets 503 and 429 is sent again, the same bytes each
// time, until the collector takes it.
func TestExportHTTPRetriesRetryableStatus(t *testing.T) {
	c, u := startHTTPCollector(t, answer(http.StatusServiceUnavailable), answer(http.StatusTooManyRequests), answer(http.StatusOK))
	e := newOTLPExporter(u, map[string]string{"X-Api-Key": "k"}, 10*time.Second)
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatal(err)
	}
	if c.requests() != 3 {
		t.Fatalf("%d requests, want 3", c.requests())
	}
	for i, b := range c.bodies {
		if !bytes.Equal(b, c.bodies[0]) {
			t.Errorf("attempt %d sent other bytes", i)
		}
		h := c.headers[i]
		if h.Get("Content-Type") != "application/x-protobuf" || h.Get("X-Api-Key") != "k" {
			t.Errorf("attempt %d headers %v", i, h)
		}
	}
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(c.bodies[2], &req); err != nil || len(req.GetResourceSpans()) != 2 {
		t.Fatalf("body: %v, %d resource spans", err, len(req.GetResourceSpans()))
	}
}

// A 400 is not retried; its google.rpc.Status message is in the error.
func TestExportHTTPBadRequestIsNotRetried(t *testing.T) {
	body, _ := proto.Marshal(&spb.Status{Code: 3, Message: "span name too long"})
	c, u := startHTTPCollector(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
	})
	e := newOTLPExporter(u, nil, 10*time.Second)
	err := e.ExportSpans(t.Context(), stubSpans(t))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "span name too long") {
		t.Fatalf("error %v, want the 400 and its message", err)
	}
	if c.requests() != 1 {
		t.Fatalf("%d requests, want 1", c.requests())
	}
}

// A collector that keeps answering 503 fails the export by its deadline.
func TestExportHTTPGivesUpAtDeadline(t *testing.T) {
	c, u := startHTTPCollector(t, answer(http.StatusServiceUnavailable))
	e := newOTLPExporter(u, nil, 2*time.Second)
	start := time.Now()
	err := e.ExportSpans(t.Context(), stubSpans(t))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("error %v, want the 503", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s, the export's timeout is 2s", d)
	}
	if c.requests() < 2 {
		t.Fatalf("%d requests, want retries before the deadline", c.requests())
	}
}

// A refused connection is retried: the collector may be restarting.
func TestExportRetriesRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &httpCollector{answers: []func(http.ResponseWriter){answer(http.StatusOK)}}
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		srv := &http.Server{Handler: c, ReadHeaderTimeout: time.Second}
		t.Cleanup(func() { _ = srv.Close() })
		_ = srv.Serve(ln)
	}()
	e := newOTLPExporter(&url.URL{Scheme: "http", Host: addr}, nil, 10*time.Second)
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatalf("export while the collector started: %v", err)
	}
	if c.requests() != 1 {
		t.Fatalf("%d requests reached the collector, want 1", c.requests())
	}
}

// Spans the collector accepts the request for but rejects reach the
// OpenTelemetry error handler; the export itself succeeded.
func TestExportHTTPPartialSuccess(t *testing.T) {
	resp, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{
		PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"},
	})
	_, u := startHTTPCollector(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	})
	handled := captureErrors(t)
	e := newOTLPExporter(u, nil, 10*time.Second)
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatal(err)
	}
	if got := handled(); len(got) != 1 || !strings.Contains(got[0], "rejected 2 spans: too old") {
		t.Fatalf("handled errors %q", got)
	}
}

// captureErrors routes the OpenTelemetry error handler to a list for the
// test, and returns what it received.
func captureErrors(t *testing.T) func() []string {
	var mu sync.Mutex
	var got []string
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		got = append(got, err.Error())
		mu.Unlock()
	}))
	t.Cleanup(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// statusCollector answers OTLP/gRPC exports with the next of its errors
// (nil: success), the last one repeating.
type statusCollector struct {
	collectorpb.UnimplementedTraceServiceServer
	errs  []error
	resp  *collectorpb.ExportTraceServiceResponse
	calls atomic.Int32
	spans atomic.Int32
}

func (c *statusCollector) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	i := int(c.calls.Add(1)) - 1
	if err := c.errs[min(i, len(c.errs)-1)]; err != nil {
		return nil, err
	}
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.spans.Add(int32(len(ss.GetSpans())))
		}
	}
	if c.resp != nil {
		return c.resp, nil
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func startGRPCCollector(t *testing.T, c *statusCollector) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return &url.URL{Scheme: "grpc", Host: ln.Addr().String()}
}

// gRPC UNAVAILABLE is retried; the next call's spans arrive whole.
func TestExportGRPCRetriesUnavailable(t *testing.T) {
	c := &statusCollector{errs: []error{status.Error(grpccodes.Unavailable, "restarting"), nil}}
	u := startGRPCCollector(t, c)
	e := newOTLPExporter(u, nil, 10*time.Second)
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatal(err)
	}
	if c.calls.Load() != 2 || c.spans.Load() != 4 {
		t.Fatalf("%d calls, %d spans; want 2 calls, 4 spans", c.calls.Load(), c.spans.Load())
	}
}

// gRPC INVALID_ARGUMENT is not retried; its code and message are in the
// error (the message percent-decoded).
func TestExportGRPCInvalidArgumentIsNotRetried(t *testing.T) {
	c := &statusCollector{errs: []error{status.Error(grpccodes.InvalidArgument, "bad span: 100% wrong")}}
	u := startGRPCCollector(t, c)
	e := newOTLPExporter(u, nil, 10*time.Second)
	err := e.ExportSpans(t.Context(), stubSpans(t))
	if err == nil || !strings.Contains(err.Error(), "INVALID_ARGUMENT: bad span: 100% wrong") {
		t.Fatalf("error %v", err)
	}
	if c.calls.Load() != 1 {
		t.Fatalf("%d calls, want 1", c.calls.Load())
	}
}

// A gRPC partial success reaches the error handler.
func TestExportGRPCPartialSuccess(t *testing.T) {
	c := &statusCollector{errs: []error{nil}, resp: &collectorpb.ExportTraceServiceResponse{
		PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 1, ErrorMessage: "quota"},
	}}
	u := startGRPCCollector(t, c)
	handled := captureErrors(t)
	e := newOTLPExporter(u, nil, 10*time.Second)
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatal(err)
	}
	if got := handled(); len(got) != 1 || !strings.Contains(got[0], "rejected 1 spans: quota") {
		t.Fatalf("handled errors %q", got)
	}
}

// After Shutdown an export fails without a request.
func TestExportAfterShutdown(t *testing.T) {
	c, u := startHTTPCollector(t, answer(http.StatusOK))
	e := newOTLPExporter(u, nil, 10*time.Second)
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(t.Context(), stubSpans(t)); !errors.Is(err, errShutdown) {
		t.Fatalf("error %v, want errShutdown", err)
	}
	if c.requests() != 0 {
		t.Fatalf("%d requests after shutdown", c.requests())
	}
}

// The gRPC frame: uncompressed flag, then the message length.
func TestGRPCFramePrefix(t *testing.T) {
	var got []byte
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("Grpc-Status", "0")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	u.Scheme = "grpcs"
	e := newOTLPExporter(u, nil, 10*time.Second)
	e.client.Transport.(*http.Transport).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	if err := e.ExportSpans(t.Context(), stubSpans(t)); err != nil {
		t.Fatal(err)
	}
	if len(got) < 5 || got[0] != 0 || int(binary.BigEndian.Uint32(got[1:5])) != len(got)-5 {
		t.Fatalf("frame prefix % x for %d bytes", got[:min(len(got), 5)], len(got))
	}
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(got[5:], &req); err != nil {
		t.Fatal(err)
	}
}

// partialSuccess skips fields it does not know and reads a malformed
// answer as full success.
func TestPartialSuccessDecoding(t *testing.T) {
	good, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{
		PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "x"},
	})
	// An unknown fixed64 field 9 and an unknown bytes field 10 first.
	unknown := append([]byte{9<<3 | 1, 1, 2, 3, 4, 5, 6, 7, 8, 10<<3 | 2, 1, 'z'}, good...)
	for _, tt := range []struct {
		name     string
		give     []byte
		rejected int64
		msg      string
	}{
		{"empty", nil, 0, ""},
		{"partial success", good, 3, "x"},
		{"after unknown fields", unknown, 3, "x"},
		{"truncated", good[:len(good)-1], 0, ""},
		{"garbage", []byte{0xff, 0xff, 0xff}, 0, ""},
	} {
		if r, m := partialSuccess(tt.give); r != tt.rejected || m != tt.msg {
			t.Errorf("%s: %d %q, want %d %q", tt.name, r, m, tt.rejected, tt.msg)
		}
	}
}

// A collector whose certificate the client does not trust fails the
// export at once: retrying cannot fix it.
func TestExportUntrustedCertificateIsNotRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	e := newOTLPExporter(u, nil, 10*time.Second)
	start := time.Now()
	err := e.ExportSpans(t.Context(), stubSpans(t))
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v, want a certificate verification error", err)
	}
	if d := time.Since(start); d > 2*time.Second || hits.Load() != 0 {
		t.Fatalf("gave up after %s with %d requests served, want at once", d, hits.Load())
	}
}
