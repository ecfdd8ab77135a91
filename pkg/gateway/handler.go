package gateway

import (
	"bytes"
	"errors"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/router"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var (
	hdrRequestID = []byte(requestid.DefaultHeader)
	hdrAllow     = []byte("Allow")

	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
	slash               = []byte("/")
)

func appendUUID(dst []byte) []byte { return requestid.AppendUUID(dst) }

// acquire returns the live generation with its in-flight count raised. The
// re-check after the increment guarantees a retired generation is never
// used: retirement swaps first and then waits for the count to reach zero.
func (g *Gateway) acquire() *generation {
	for {
		gen := g.cur.Load()
		gen.inflight.Add(1)
		if g.cur.Load() == gen {
			return gen
		}
		gen.done()
	}
}

// done ends one request on the generation.
func (gen *generation) done() {
	if gen.inflight.Add(-1) == 0 && gen.retired.Load() {
		gen.signalIdle()
	}
}

func (gen *generation) signalIdle() {
	select {
	case <-gen.idle:
	default:
		defer func() { _ = recover() }() // closed concurrently
		close(gen.idle)
	}
}

// Handle is the client-facing fasthttp handler.
func (g *Gateway) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	metrics.InflightAdd(1)
	gen := g.acquire()
	rt := acquireTrace()
	defer g.finish(ctx, gen, rt)
	st := reqctx.Acquire(ctx)
	st.RequestID = requestid.Assign(st.RequestID, ctx.Request.Header.PeekBytes(hdrRequestID))
	// Checked before header hygiene, which drops Connection, Upgrade and
	// Transfer-Encoding.
	smuggled := ctx.Request.Header.ConnectionClose() && ambiguousFraming(ctx.Request.Header.RawHeaders())
	ws := proxy.IsWebSocketUpgrade(&ctx.Request.Header)
	handshake := ws && proxy.IsWebSocketHandshake(&ctx.Request.Header)
	rt.protocol = protocolOf(&ctx.Request.Header, false)
	st.ClientIP = proxy.PrepareRequest(&ctx.Request, ctx.RemoteIP(), ctx.IsTLS(), gen.trusted, gen.identity, st.ClientIP)
	if gen.dropUnderscore {
		proxy.DropUnderscoreHeaders(&ctx.Request)
	}
	// After header hygiene: a traceparent the client named in Connection
	// is gone, and the one set for the upstream cannot be removed.
	rt.begin(ctx, gen.tracer, start)
	if gen.forwardCert != nil {
		setClientCert(ctx, gen.forwardCert)
	}

	var (
		r    *route
		body *clientBody
		ok   = true
	)
	if smuggled {
		// fasthttp reads such a body as chunked; answering it at all would
		// let a front proxy that trusted Content-Length desynchronise.
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "request has both Content-Length and Transfer-Encoding")
		ctx.SetConnectionClose()
		ok = false
	} else if g.oversizedN.Load() > 0 && g.takeOversized(&ctx.Request.Header) {
		// Content-Length over the limit, noted before the body was read.
		writeBodyTooLarge(ctx)
		ok = false
	} else if ctx.Request.IsBodyStream() && g.streamBodies {
		body, ok = g.prepareBody(ctx)
	}
	if ok {
		r = g.route(ctx, gen, st)
	}
	if r != nil {
		st.Route = r.name
		st.Upstream = r.upstreamName
		rt.setRoute(r)
		if ws && !r.websocket {
			// Other Upgrade values (h2c) were dropped as hop-by-hop and the
			// request goes on as HTTP/1.1; a WebSocket client would only
			// get a confusing 200 or a hang, so it is told.
			apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "websocket not enabled on this route")
		} else if ws && !handshake {
			apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "invalid websocket handshake: needs a GET with Connection: Upgrade")
		} else {
			var tunnel *tunnelInfo
			verdict, ran := r.chain.Handle(ctx)
			if verdict == plugins.Next {
				if ws {
					rt.protocol = protoWebSocket
					tunnel = g.upgrade(ctx, r, st, rt)
				} else {
					g.forward(ctx, r, st, body, rt)
				}
			} else {
				rt.endedBy = r.chain.Kinds()[ran-1]
			}
			r.chain.OnResponse(ctx, ran)
			if tunnel != nil {
				tunnel.head = ctx.Response.Header.AppendBytes(nil)
			}
		}
	}
	if body != nil {
		rt.bytesIn = body.n
	} else {
		rt.bytesIn = int64(len(ctx.Request.Body()))
	}
	if body != nil {
		// The request must not refer to the pooled buffers any longer.
		ctx.Request.ResetBody()
		body.release()
	}

	if g.draining.Load() {
		// From the shutdown signal on, clients are told to reconnect: a
		// kept-alive connection closed by the drain would otherwise meet
		// the client's next request.
		ctx.SetConnectionClose()
	}

	d := time.Since(start)
	status := ctx.Response.StatusCode()
	if r != nil {
		r.metrics.Observe(metrics.MethodIndex(ctx.Method()), status, d)
		observeResponseSize(ctx, r.metrics)
	} else {
		st.Route = UnmatchedRoute
		gen.unmatched.Observe(metrics.MethodIndex(ctx.Method()), status, d)
		observeResponseSize(ctx, gen.unmatched)
	}
	rt.end(ctx, st, status)
	if g.accessLog.Load() {
		g.logAccess(ctx, st, rt, gen.accessQuery, status, d)
	}
}

// finish ends a request on its generation. It also turns a panic in a
// plugin or in the gateway into a 500 JSON answer and an error log line, so
// one bad request cannot take the process down (fasthttp does not recover
// handler panics).
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, gen *generation, rt *reqTrace) {
	if p := recover(); p != nil {
		g.recovered(ctx, p, rt)
	}
	rt.release()
	gen.done()
	metrics.InflightAdd(-1)
}

func (g *Gateway) recovered(ctx *fasthttp.RequestCtx, p any, rt *reqTrace) {
	var id []byte
	route := ""
	if st := reqctx.Get(ctx); st != nil {
		id, route = st.RequestID, st.Route
	}
	g.logger.Error("panic while serving a request; answered 500", zap.Any("panic", p),
		zap.ByteString("request_id", id), zap.ByteString("trace_id", rt.traceID()), zap.String("route", route), zap.Stack("stack"))
	ctx.Response.Reset()
	apierror.Write(ctx, fasthttp.StatusInternalServerError, apierror.CodeInternal, "internal error")
	ctx.SetConnectionClose()
}

// ambiguousFraming reports whether raw request headers carry both
// Content-Length and Transfer-Encoding (RFC 9112 §6.3: a request smuggling
// attempt). fasthttp marks such requests Connection: close, so this scan
// only runs for those.
func ambiguousFraming(raw []byte) bool {
	var cl, te bool
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		name := bytes.TrimSpace(line[:colon])
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			cl = true
		case bytes.EqualFold(name, hdrTransferEncoding):
			te = true
		}
	}
	return cl && te
}

// route normalises the path and matches it; on no match it writes the
// 400/404/405 response and returns nil.
func (g *Gateway) route(ctx *fasthttp.RequestCtx, gen *generation, st *reqctx.State) *route {
	uri := ctx.Request.URI()
	norm, err := router.NormalizePath(st.Path[:0], uri.PathOriginal())
	if err != nil {
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "invalid request path")
		return nil
	}
	st.Path = norm
	res := gen.table.Match(ctx.Method(), ctx.Host(), norm, &ctx.Request.Header)
	switch res.Status {
	case 0:
		st.Params = res.Params
		return res.Route.Value.(*route)
	case fasthttp.StatusMethodNotAllowed:
		ctx.Response.Header.SetBytesKV(hdrAllow, res.Allow)
		apierror.Write(ctx, fasthttp.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed, "method not allowed on this path")
	default:
		apierror.Write(ctx, fasthttp.StatusNotFound, apierror.CodeNotFound, "no route matches this request")
	}
	return nil
}

// forward sends the request to the route's upstream (or the in-process
// auth service) with the normalised path, and maps upstream failures to the
// gateway's JSON errors.
//
// body is the request's body when the server reads bodies as streams (nil
// otherwise, or without a body): a streamed body is read whole for
// builtin:auth, and when the exchange fails because the client's side of a
// streamed body did (too large, too slow, cut short), the client is
// answered for that, not with an upstream error.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, r *route, st *reqctx.State, body *clientBody, rt *reqTrace) {
	setUpstreamPath(ctx, r, st)
	if r.builtin != nil {
		if ctx.Request.IsBodyStream() && body != nil && !body.bufferForAuth(ctx) {
			return
		}
		r.builtin.Handle(ctx)
		return
	}
	// Without preserve_host the upstream sees its target's host; the
	// client's Host travels in X-Forwarded-Host.
	ctx.Request.UseHostHeader = r.preserveHost
	t0 := time.Now()
	err := r.upstream.DoObservedFrom(&ctx.Request, &ctx.Response, r.timeout, t0, rt)
	rt.upstreamDur = time.Since(t0)
	r.upDuration.Update(rt.upstreamDur.Seconds())
	if err != nil && body != nil && body.err != nil {
		// The upstream exchange was aborted mid-body; the upstream saw the
		// connection close before the body ended.
		ctx.Response.Reset()
		writeClientBodyError(ctx, body.err)
		return
	}
	if err != nil {
		g.upstreamFailed(ctx, r, st, rt, err)
		return
	}
	proxy.CleanResponse(&ctx.Response)
}

// setUpstreamPath puts the normalised path, without the stripped prefix, on
// the request URI: the bytes the route was matched on are the bytes sent.
// A route with rewrite.path sends its template filled with the parameters
// captured from that same path instead. The query string is kept either
// way.
func setUpstreamPath(ctx *fasthttp.RequestCtx, r *route, st *reqctx.State) {
	if r.rewrite != nil {
		st.Scratch = r.rewrite.Append(st.Scratch[:0], st.Path, &st.Params)
	} else {
		p := st.Path
		if r.stripPrefix != nil {
			p = stripPrefix(p, r.stripPrefix)
		}
		st.Scratch = router.AppendEscapedPath(st.Scratch[:0], p)
	}
	// Most paths are already in normal form: then the bytes on the wire are
	// the client's and the URI need not be rewritten (and re-parsed).
	if uri := ctx.Request.URI(); !bytes.Equal(st.Scratch, uri.PathOriginal()) {
		uri.SetPathBytes(st.Scratch)
	}
}

// upstreamFailed answers an upstream failure with the gateway's JSON error.
func (g *Gateway) upstreamFailed(ctx *fasthttp.RequestCtx, r *route, st *reqctx.State, rt *reqTrace, err error) {
	status, code := proxy.Classify(err)
	ctx.Response.Reset()
	apierror.Write(ctx, status, code, upstreamMessage(status))
	if g.logger.Core().Enabled(zap.DebugLevel) || !errors.Is(err, proxy.ErrTimeout) {
		g.upstreamErrors.Warn("upstream request failed", zap.String("route", r.name),
			zap.String("upstream", r.upstreamName), zap.ByteString("request_id", st.RequestID),
			zap.ByteString("trace_id", rt.traceID()), zap.Error(err))
	}
}

func upstreamMessage(status int) string {
	switch status {
	case fasthttp.StatusGatewayTimeout:
		return "the upstream did not answer in time"
	case fasthttp.StatusServiceUnavailable:
		return "no upstream target is available"
	}
	return "the upstream could not be reached or sent an invalid response"
}

// stripPrefix removes prefix (whole segments, no trailing slash) from p.
func stripPrefix(p, prefix []byte) []byte {
	if !bytes.HasPrefix(p, prefix) {
		return p
	}
	rest := p[len(prefix):]
	if len(rest) == 0 {
		return slash
	}
	return rest
}

func (g *Gateway) logAccess(ctx *fasthttp.RequestCtx, st *reqctx.State, rt *reqTrace, query bool, status int, d time.Duration) {
	ce := g.access.Check(zap.InfoLevel, "access")
	if ce == nil {
		return
	}
	l := accessPool.Get().(*accessLine)
	l.entry = accessEntry{ctx: ctx, st: st, rt: rt, query: query, status: status, d: d}
	l.fields[0] = zap.Inline(&l.entry)
	// A pooled one-element slice: zap's variadic Write would otherwise
	// allocate the field slice on every request.
	ce.Write(l.fields[:]...)
	l.entry = accessEntry{}
	l.fields[0] = zap.Field{}
	accessPool.Put(l)
}

// accessEntry is one access log line's fields, marshalled by zap without
// per-field boxing.
type accessEntry struct {
	ctx    *fasthttp.RequestCtx
	st     *reqctx.State
	rt     *reqTrace
	query  bool
	status int
	d      time.Duration
}

type accessLine struct {
	entry  accessEntry
	fields [1]zap.Field
}

var accessPool = sync.Pool{New: func() any { return new(accessLine) }}

// MarshalLogObject implements zapcore.ObjectMarshaler. The fields are
// documented in docs/observability.md.
func (e *accessEntry) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	rt := e.rt
	h := &e.ctx.Request.Header
	enc.AddByteString("request_id", e.st.RequestID)
	enc.AddByteString("method", e.ctx.Method())
	path := e.st.Path
	if q := e.ctx.URI().QueryString(); e.query && len(q) > 0 {
		rt.path = append(append(append(rt.path[:0], path...), '?'), q...)
		path = rt.path
	}
	enc.AddByteString("path", path)
	enc.AddByteString("host", rt.host)
	enc.AddString("protocol", rt.protocol)
	enc.AddString("route", e.st.Route)
	enc.AddInt("status", e.status)
	enc.AddDuration("duration", e.d)
	enc.AddInt64("bytes_in", rt.bytesIn)
	enc.AddInt64("bytes_out", responseBytes(&e.ctx.Response))
	enc.AddString("upstream", e.st.Upstream)
	enc.AddString("upstream_addr", rt.upstreamAddr)
	enc.AddInt("upstream_status", rt.upstreamStatus)
	enc.AddDuration("upstream_duration", rt.upstreamDur)
	enc.AddByteString("trace_id", rt.traceID())
	enc.AddByteString("user_id", e.st.Identity.Subject)
	enc.AddByteString("client_ip", e.st.ClientIP)
	enc.AddByteString("user_agent", h.UserAgent())
	return nil
}

// responseBytes is the size of the response body: its length when it is in
// memory, its Content-Length when it streams (from the upstream), and -1
// for a stream without a length (chunked), whose size is known only once
// it has been written.
func responseBytes(resp *fasthttp.Response) int64 {
	if resp.IsBodyStream() {
		if n := resp.Header.ContentLength(); n >= 0 {
			return int64(n)
		}
		return -1
	}
	return int64(len(resp.Body()))
}
