package secheaders

import (
	"bytes"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

var (
	hSTS            = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderStrictTransportSecurity)
	hForwardedProto = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderXForwardedProto)
)

// Handle implements plugins.Plugin; the work is done in OnResponse.
func (*Plugin) Handle(*fasthttp.RequestCtx) plugins.Verdict { return plugins.Next }

// OnResponse implements plugins.ResponseHook: it sets the headers on the
// upstream's response or on the gateway's own, replacing upstream values.
// Strict-Transport-Security is only sent on HTTPS: a TLS connection, or an
// X-Forwarded-Proto of https (which the gateway keeps only from trusted
// proxies).
func (p *Plugin) OnResponse(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	for i := range p.headers {
		h.SetCanonical(p.headers[i].name, p.headers[i].value)
	}
	if p.hsts != nil && (ctx.IsTLS() || forwardedHTTPS(ctx.Request.Header.PeekBytes(hForwardedProto))) {
		h.SetCanonical(hSTS, p.hsts)
	}
}

// forwardedHTTPS reports whether the first (client-facing) value of
// X-Forwarded-Proto is https.
func forwardedHTTPS(v []byte) bool {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	v = bytes.TrimSpace(v)
	return len(v) == 5 && (v[0]|0x20) == 'h' && (v[1]|0x20) == 't' && (v[2]|0x20) == 't' && (v[3]|0x20) == 'p' && (v[4]|0x20) == 's'
}
