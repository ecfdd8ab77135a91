package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Header names in fasthttp's canonical form, so SetCanonical skips the
// per-call normalisation and replaces a same-named upstream header. HTTP
// field names are case-insensitive: RateLimit-Policy and Ratelimit-Policy
// are the same field.
var (
	headerPolicy     = []byte("Ratelimit-Policy")
	headerRateLimit  = []byte("Ratelimit")
	headerLimit      = []byte("Ratelimit-Limit")
	headerRemaining  = []byte("Ratelimit-Remaining")
	headerReset      = []byte("Ratelimit-Reset")
	headerRetryAfter = []byte("Retry-After")

	tagIP     = []byte("|ip:")
	tagUser   = []byte("|user:")
	tagRoute  = []byte("|route:")
	tagHeader = []byte("|h:")
	tagHash   = []byte("#")
	stateT    = []byte(";t=")
)

// maxPartLen is the longest key component used as is; a longer one (a
// header value) is replaced by a hash so keys stay small.
const maxPartLen = 128

// logEvery is the shortest interval between two store-error log lines of a
// plugin instance; the errors in between are counted in the next line.
const logEvery = 10 * time.Second

// bufPool holds scratch buffers for keys and header values.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 256)
	return &b
}}

// Handle takes cost tokens from the request's bucket. It passes the request
// on when they were there and answers 429 otherwise; when the store fails it
// follows on_store_error.
func (l *Limiter) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	st := reqctx.Get(ctx)
	bp := bufPool.Get().(*[]byte)
	key := l.appendKey((*bp)[:0], ctx, st)
	var res store.Result
	var err error
	if l.local {
		// An in-process store never blocks: no deadline to allocate.
		res, err = l.store.Take(context.Background(), key, l.rate, l.cost)
	} else {
		// A context shared with the calls of the same millisecond: its
		// deadline is at most 1 ms sooner than store_timeout.
		c, cancel := store.CallContext(l.timeout)
		res, err = l.store.Take(c, key, l.rate, l.cost)
		cancel()
	}
	*bp = key[:0]
	bufPool.Put(bp)
	if err != nil {
		// Whatever the store did, the request is not counted as admitted
		// by it: on_store_error decides.
		return l.storeFailed(ctx, err)
	}
	if l.mode != headersOff {
		l.remember(ctx, res)
	}
	if res.Allowed {
		return plugins.Next
	}
	l.rejected.Inc()
	l.setHeaders(&ctx.Response.Header, res)
	secs := max(ceilSeconds(res.RetryAfter), 1)
	var num [20]byte
	ctx.Response.Header.SetCanonical(headerRetryAfter, strconv.AppendInt(num[:0], secs, 10))
	apierror.WriteInt(ctx, fasthttp.StatusTooManyRequests, apierror.CodeRateLimited,
		"rate limit exceeded", "retry_after", secs)
	return plugins.Done
}

// OnResponse sets the rate-limit headers on the final response (the
// upstream's, or the 429), from the result Handle recorded.
func (l *Limiter) OnResponse(ctx *fasthttp.RequestCtx) {
	if p, _ := ctx.UserValue(pendingKey{}).(*pending); p != nil && p.owner == l {
		l.setHeaders(&ctx.Response.Header, p.res)
	}
}

// appendKey appends the bucket key "<bucket>|<part>|<part>" to b. Parts
// are escaped so that no two requests with different parts share a key.
func (l *Limiter) appendKey(b []byte, ctx *fasthttp.RequestCtx, st *reqctx.State) []byte {
	b = append(b, l.prefix...)
	for i := range l.parts {
		switch p := &l.parts[i]; p.kind {
		case partIP:
			b = appendIP(b, ctx, st)
		case partUser:
			if st != nil && st.Authenticated && len(st.Identity.Subject) > 0 {
				b = append(b, tagUser...)
				b = appendPart(b, st.Identity.Subject)
			} else {
				b = appendIP(b, ctx, st)
			}
		case partRoute:
			b = append(b, tagRoute...)
			b = append(b, l.routePart...)
		case partHeader:
			if v := ctx.Request.Header.PeekBytes(p.header); len(v) > 0 {
				b = append(b, tagHeader...)
				b = appendPart(b, v)
			} else {
				b = appendIP(b, ctx, st)
			}
		}
	}
	return b
}

// appendIP appends the client IP the gateway resolved (honouring
// trusted_proxies), or the peer address when there is none.
func appendIP(b []byte, ctx *fasthttp.RequestCtx, st *reqctx.State) []byte {
	b = append(b, tagIP...)
	if st != nil && len(st.ClientIP) > 0 {
		return appendPart(b, st.ClientIP)
	}
	if a, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		return a.Unmap().AppendTo(b)
	}
	return b
}

// appendPart appends v escaped, or "#" and a hash of v when v is long.
func appendPart(b, v []byte) []byte {
	if len(v) <= maxPartLen {
		return appendEscaped(b, v)
	}
	sum := sha256.Sum256(v)
	b = append(b, tagHash...)
	return hex.AppendEncode(b, sum[:16])
}

// appendEscaped appends v with '|', '\' and '#' escaped by '\'.
func appendEscaped(b, v []byte) []byte {
	for _, c := range v {
		if c == '|' || c == '\\' || c == '#' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// setHeaders writes the rate-limit headers of res in the configured mode.
func (l *Limiter) setHeaders(h *fasthttp.ResponseHeader, res store.Result) {
	if l.mode == headersOff {
		return
	}
	reset := ceilSeconds(res.Reset)
	bp := bufPool.Get().(*[]byte)
	b := *bp
	if l.mode == headersBoth || l.mode == headersIETF {
		h.SetCanonical(headerPolicy, l.policy)
		b = append(b[:0], l.statePrefix...)
		b = strconv.AppendInt(b, res.Remaining, 10)
		b = append(b, stateT...)
		b = strconv.AppendInt(b, reset, 10)
		h.SetCanonical(headerRateLimit, b)
	}
	if l.mode == headersBoth || l.mode == headersLegacy {
		h.SetCanonical(headerLimit, l.burstValue)
		h.SetCanonical(headerRemaining, strconv.AppendInt(b[:0], res.Remaining, 10))
		h.SetCanonical(headerReset, strconv.AppendInt(b[:0], reset, 10))
	}
	*bp = b[:0]
	bufPool.Put(bp)
}

// storeFailed counts and (rarely) logs a store error, then allows the
// request or answers 503 as on_store_error says.
func (l *Limiter) storeFailed(ctx *fasthttp.RequestCtx, err error) plugins.Verdict {
	l.storeErrors.Inc()
	if suppressed, ok := l.logGate.open(time.Now()); ok {
		l.log.Warn("rate-limit store call failed", zap.Error(err), zap.Int64("suppressed", suppressed))
	}
	if l.failOpen {
		return plugins.Next
	}
	apierror.Write(ctx, fasthttp.StatusServiceUnavailable, apierror.CodeUnavailable,
		"rate limit store unavailable")
	return plugins.Done
}

// logGate lets one log line through per logEvery and counts the rest.
type logGate struct {
	last       atomic.Int64 // unix ns of the last line
	suppressed atomic.Int64
}

// open reports whether a line may be logged now and how many were
// suppressed since the last one.
func (g *logGate) open(now time.Time) (int64, bool) {
	n := now.UnixNano()
	last := g.last.Load()
	if last != 0 && n-last < int64(logEvery) || !g.last.CompareAndSwap(last, n) {
		g.suppressed.Add(1)
		return 0, false
	}
	return g.suppressed.Swap(0), true
}

// pending carries the result whose headers the response gets, from Handle
// to OnResponse. One is pooled per request that runs a ratelimit plugin;
// fasthttp closes it when the request's user values are reset.
type pending struct {
	owner *Limiter
	res   store.Result
}

type pendingKey struct{}

var pendingPool = sync.Pool{New: func() any { return new(pending) }}

// Close returns p to its pool.
func (p *pending) Close() error {
	*p = pending{}
	pendingPool.Put(p)
	return nil
}

// remember records res for OnResponse. With several ratelimit plugins on a
// route, the response describes the one closest to rejecting (the fewest
// tokens remaining), or the one that rejected.
func (l *Limiter) remember(ctx *fasthttp.RequestCtx, res store.Result) {
	p, _ := ctx.UserValue(pendingKey{}).(*pending)
	if p == nil {
		p = pendingPool.Get().(*pending)
		ctx.SetUserValue(pendingKey{}, p)
	} else if p.owner != nil && res.Allowed && res.Remaining >= p.res.Remaining {
		return
	}
	p.owner, p.res = l, res
}
