package cors

import (
	"github.com/gatewayd/gatewayd/internal/headerlist"
	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

// Header names in fasthttp's canonical form, as SetCanonical needs.
var (
	hOrigin       = canonical(fasthttp.HeaderOrigin)
	hReqMethod    = canonical(fasthttp.HeaderAccessControlRequestMethod)
	hReqHeaders   = canonical(fasthttp.HeaderAccessControlRequestHeaders)
	hAllowOrigin  = canonical(fasthttp.HeaderAccessControlAllowOrigin)
	hAllowCreds   = canonical(fasthttp.HeaderAccessControlAllowCredentials)
	hAllowMethods = canonical(fasthttp.HeaderAccessControlAllowMethods)
	hAllowHeaders = canonical(fasthttp.HeaderAccessControlAllowHeaders)
	hExpose       = canonical(fasthttp.HeaderAccessControlExposeHeaders)
	hMaxAge       = canonical(fasthttp.HeaderAccessControlMaxAge)
	hVary         = canonical(fasthttp.HeaderVary)

	valueStar          = []byte("*")
	valueTrue          = []byte("true")
	valueOrigin        = []byte("Origin")
	valuePreflightVary = []byte("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
)

func canonical(name string) []byte { return fasthttp.AppendNormalizedHeaderKey(nil, name) }

// Handle implements plugins.Plugin: it answers preflight requests (OPTIONS
// with Origin and Access-Control-Request-Method) itself, with 204 or 403,
// and passes every other request on.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	origin := ctx.Request.Header.PeekBytes(hOrigin)
	if len(origin) == 0 || !isPreflight(ctx) {
		return plugins.Next
	}
	h := &ctx.Response.Header
	h.SetCanonical(hVary, valuePreflightVary)
	reqHeaders := ctx.Request.Header.PeekBytes(hReqHeaders)
	if !p.originAllowed(origin) || !p.methodAllowed(ctx.Request.Header.PeekBytes(hReqMethod)) || !p.headersAllowed(reqHeaders) {
		apierror.Write(ctx, fasthttp.StatusForbidden, apierror.CodeForbidden, "CORS preflight refused")
		return plugins.Done
	}
	ctx.Response.SetStatusCode(fasthttp.StatusNoContent)
	ctx.Response.ResetBody()
	p.setOrigin(h, origin)
	h.SetCanonical(hAllowMethods, p.allowMethods)
	switch {
	case p.anyHeader && len(reqHeaders) > 0:
		h.SetCanonical(hAllowHeaders, reqHeaders)
	case p.allowHeaders != nil:
		h.SetCanonical(hAllowHeaders, p.allowHeaders)
	}
	if p.maxAge != nil {
		h.SetCanonical(hMaxAge, p.maxAge)
	}
	return plugins.Done
}

// OnResponse implements plugins.ResponseHook: for an allowed origin it sets
// the CORS headers on the response (the upstream's or the gateway's own
// error), replacing any the upstream sent; for another origin it removes
// them. Every response gets Vary: Origin.
func (p *Plugin) OnResponse(ctx *fasthttp.RequestCtx) {
	origin := ctx.Request.Header.PeekBytes(hOrigin)
	if len(origin) > 0 && isPreflight(ctx) {
		return // answered in Handle
	}
	h := &ctx.Response.Header
	if !varies(h) {
		h.AddBytesKV(hVary, valueOrigin)
	}
	if len(origin) == 0 || !p.originAllowed(origin) {
		h.DelBytes(hAllowOrigin)
		h.DelBytes(hAllowCreds)
		h.DelBytes(hExpose)
		return
	}
	p.setOrigin(h, origin)
	if p.expose != nil {
		h.SetCanonical(hExpose, p.expose)
	} else {
		h.DelBytes(hExpose)
	}
}

func isPreflight(ctx *fasthttp.RequestCtx) bool {
	return ctx.IsOptions() && len(ctx.Request.Header.PeekBytes(hReqMethod)) > 0
}

func (p *Plugin) setOrigin(h *fasthttp.ResponseHeader, origin []byte) {
	if p.anyOrigin && !p.credentials {
		h.SetCanonical(hAllowOrigin, valueStar)
	} else {
		h.SetCanonical(hAllowOrigin, origin)
	}
	if p.credentials {
		h.SetCanonical(hAllowCreds, valueTrue)
	} else {
		h.DelBytes(hAllowCreds)
	}
}

func (p *Plugin) originAllowed(o []byte) bool {
	if p.anyOrigin {
		return true
	}
	for _, s := range p.origins {
		if headerlist.EqualLower(o, s) {
			return true
		}
	}
	for _, w := range p.wildcards {
		n := len(o) - len(w.suffix)
		if n > len(w.prefix) && headerlist.EqualLower(o[:len(w.prefix)], w.prefix) && headerlist.EqualLower(o[n:], w.suffix) &&
			hostPrefix(o[len(w.prefix):n]) {
			return true
		}
	}
	return false
}

// hostPrefix reports whether b is one or more DNS labels (what a wildcard
// may stand for): letters, digits, '-' and inner dots.
func hostPrefix(b []byte) bool {
	prev := byte('.')
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		case c == '.' && prev != '.':
		default:
			return false
		}
		prev = c
	}
	return prev != '.'
}

func (p *Plugin) methodAllowed(m []byte) bool {
	for _, s := range p.methods {
		if string(m) == s {
			return true
		}
	}
	return false
}

// headersAllowed checks each name of an Access-Control-Request-Headers list.
func (p *Plugin) headersAllowed(list []byte) bool {
	if p.anyHeader {
		return true
	}
	for len(list) > 0 {
		var name []byte
		name, list = headerlist.Next(list)
		if len(name) == 0 {
			continue
		}
		ok := false
		for _, s := range p.headers {
			if headerlist.EqualLower(name, s) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// varies reports whether the response already varies on Origin (or on
// everything).
func varies(h *fasthttp.ResponseHeader) bool {
	v := h.PeekAll(fasthttp.HeaderVary)
	return headerlist.Has(v, "origin") || headerlist.Has(v, "*")
}
