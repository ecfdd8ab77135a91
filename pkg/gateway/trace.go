package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/tracing"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The trace headers in fasthttp's canonical form, so that setting them
// skips normalisation.
var (
	hdrTraceparent = []byte("Traceparent")
	hdrTracestate  = []byte("Tracestate")
)

// Values of the access log's protocol field.
const (
	protoHTTP11    = "http/1.1"
	protoHTTP10    = "http/1.0"
	protoWebSocket = "ws"
)

// Span attribute keys: OpenTelemetry semantic conventions where one fits,
// gatewayd.* for the gateway's own notions.
const (
	attrMethod     = "http.request.method"
	attrStatus     = "http.response.status_code"
	attrClientAddr = "client.address"
	attrPath       = "url.path"
	attrServerAddr = "server.address"
	attrProtoVer   = "network.protocol.version"
	attrErrorType  = "error.type"
	attrHTTPRoute  = "http.route"
	attrRoute      = "gatewayd.route"
	attrUpstream   = "gatewayd.upstream"
	attrPlugin     = "gatewayd.plugin"
	attrTarget     = "gatewayd.upstream.target"
	attrClientKind = "gatewayd.upstream.client"
	attrAttempt    = "gatewayd.upstream.attempt"
)

// reqTrace is one request's trace context and what the access log and the
// spans say about its upstream exchange. It is pooled: Handle takes one and
// finish returns it, so nothing of it outlives the request.
//
// With tracing off, the client's traceparent (if valid) only names the
// trace id for the logs: the header reaches the upstream untouched. With
// tracing on, the gateway continues the trace: the upstream receives a
// traceparent whose parent is the gateway's span (the attempt's span for a
// sampled request, an unrecorded span id otherwise).
type reqTrace struct {
	// sc is the request's trace: its trace id, and the span id the
	// upstream's traceparent names (see above); has says sc is known.
	sc  tracing.SpanContext
	has bool

	// Sampled requests only: the server span, its context, and the span
	// of the attempt in progress.
	tracer  *tracing.Tracer
	ctx     context.Context
	span    trace.Span
	attempt trace.Span

	// The upstream exchange, for the access log: the last attempt's
	// target address and status (0: no answer), the time Do took.
	upstreamAddr   string
	upstreamStatus int
	upstreamDur    time.Duration
	// endedBy is the kind of the plugin that answered the request ("" when
	// none did).
	endedBy  string
	protocol string
	bytesIn  int64

	// host is the client's Host header, kept before the upstream exchange
	// points the request at the target.
	host []byte

	// Scratch: a traceparent, the hex trace id, the path with its query.
	tp   [tracing.TraceparentLen]byte
	hex  [32]byte
	path []byte
}

var tracePool = sync.Pool{New: func() any { return new(reqTrace) }}

var _ proxy.AttemptObserver = (*reqTrace)(nil)

func acquireTrace() *reqTrace { return tracePool.Get().(*reqTrace) }

// release ends spans left open (a panic) and returns rt to the pool.
func (rt *reqTrace) release() {
	if rt.attempt != nil {
		rt.attempt.SetStatus(codes.Error, "request aborted")
		rt.attempt.End()
	}
	if rt.span != nil {
		rt.span.SetStatus(codes.Error, "request aborted")
		rt.span.End()
	}
	path, host := rt.path[:0], rt.host[:0]
	*rt = reqTrace{path: path, host: host}
	tracePool.Put(rt)
}

// begin reads the client's trace context and, with tracing on, decides
// whether the request is sampled, starts its server span if so and sets
// the traceparent the upstream receives.
func (rt *reqTrace) begin(ctx *fasthttp.RequestCtx, tr *tracing.Tracer, start time.Time) {
	h := &ctx.Request.Header
	rt.host = append(rt.host[:0], h.Host()...)
	parent, ok := tracing.ParseTraceparent(h.PeekBytes(hdrTraceparent))
	if tr == nil {
		rt.sc, rt.has = parent, ok
		return
	}
	switch {
	case ok && parent.Sampled(), !ok && tr.SampleNew():
		rt.startSpan(ctx, tr, parent, ok, start)
	case ok:
		// Not sampled upstream of us: continue the trace unrecorded.
		rt.sc = tracing.SpanContext{TraceID: parent.TraceID, SpanID: tracing.NewSpanID(), Flags: parent.Flags}
	default:
		rt.sc = tracing.SpanContext{TraceID: tracing.NewTraceID(), SpanID: tracing.NewSpanID()}
	}
	if !ok && len(h.PeekBytes(hdrTracestate)) > 0 {
		// A tracestate belongs to the traceparent it came with.
		h.DelBytes(hdrTracestate)
	}
	rt.has = true
	h.SetCanonical(hdrTraceparent, tracing.AppendTraceparent(rt.tp[:0], rt.sc))
}

func (rt *reqTrace) startSpan(ctx *fasthttp.RequestCtx, tr *tracing.Tracer, parent tracing.SpanContext, remote bool, start time.Time) {
	pctx := context.Background()
	if remote {
		pctx = tracing.RemoteContext(pctx, parent, ctx.Request.Header.PeekBytes(hdrTracestate))
	}
	rt.tracer = tr
	rt.ctx, rt.span = tr.Tracer().Start(pctx, UnmatchedRoute,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	rt.sc = tracing.Of(rt.span.SpanContext())
}

// setRoute names the server span after the matched route.
func (rt *reqTrace) setRoute(r *route) {
	if rt.span != nil {
		rt.span.SetName(r.name)
		rt.span.SetAttributes(attribute.String(attrHTTPRoute, r.pattern))
	}
}

// AttemptStart implements proxy.AttemptObserver.
func (rt *reqTrace) AttemptStart(req *fasthttp.Request, a proxy.Attempt) {
	rt.upstreamAddr, rt.upstreamStatus = a.Addr, 0
	if rt.span == nil {
		return
	}
	_, rt.attempt = rt.tracer.Tracer().Start(rt.ctx, "upstream "+a.Upstream,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String(attrUpstream, a.Upstream),
			attribute.String(attrTarget, a.Target),
			attribute.String(attrServerAddr, a.Addr),
			attribute.String(attrClientKind, a.Client),
			attribute.Int(attrAttempt, a.N),
		))
	sc := tracing.Of(rt.attempt.SpanContext())
	req.Header.SetCanonical(hdrTraceparent, tracing.AppendTraceparent(rt.tp[:0], sc))
}

// AttemptEnd implements proxy.AttemptObserver.
func (rt *reqTrace) AttemptEnd(resp *fasthttp.Response, err error) {
	if err == nil {
		rt.upstreamStatus = resp.StatusCode()
	}
	if rt.attempt == nil {
		return
	}
	s := rt.attempt
	rt.attempt = nil
	if err != nil {
		s.SetAttributes(attribute.String(attrErrorType, attemptErrorType(err)))
		s.SetStatus(codes.Error, err.Error())
	} else {
		s.SetAttributes(attribute.Int(attrStatus, rt.upstreamStatus))
		if rt.upstreamStatus >= 500 {
			s.SetStatus(codes.Error, "")
		}
	}
	s.End()
}

// end ends the server span with the request's outcome.
func (rt *reqTrace) end(ctx *fasthttp.RequestCtx, st *reqctx.State, status int) {
	s := rt.span
	if s == nil {
		return
	}
	rt.span = nil
	attrs := []attribute.KeyValue{
		attribute.String(attrMethod, string(ctx.Method())),
		attribute.String(attrRoute, st.Route),
		attribute.String(attrPath, string(st.Path)),
		attribute.Int(attrStatus, status),
		attribute.String(attrClientAddr, string(st.ClientIP)),
		attribute.String(attrProtoVer, protocolVersion(rt.protocol)),
	}
	if st.Upstream != "" {
		attrs = append(attrs, attribute.String(attrUpstream, st.Upstream))
	}
	if rt.endedBy != "" {
		attrs = append(attrs, attribute.String(attrPlugin, rt.endedBy))
	}
	s.SetAttributes(attrs...)
	if status >= 500 {
		s.SetStatus(codes.Error, strconv.Itoa(status)+" "+fasthttp.StatusMessage(status))
	}
	s.End()
}

// traceID returns the request's trace id in hex, or nil when it has none.
// The bytes are rt's: valid until rt is released.
func (rt *reqTrace) traceID() []byte {
	if rt == nil || !rt.has {
		return nil
	}
	return tracing.AppendHex(rt.hex[:0], rt.sc.TraceID[:])
}

// attemptErrorType classifies a failed attempt for the error.type
// attribute.
func attemptErrorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no_free_connections"
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}

func protocolVersion(p string) string {
	if p == protoHTTP10 {
		return "1.0"
	}
	return "1.1"
}

// protocolOf names the request's protocol for the access log.
func protocolOf(h *fasthttp.RequestHeader, ws bool) string {
	switch {
	case ws:
		return protoWebSocket
	case h.IsHTTP11():
		return protoHTTP11
	}
	return protoHTTP10
}
