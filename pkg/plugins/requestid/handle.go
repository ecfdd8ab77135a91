package requestid

import (
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// Plugin sets the request id on the upstream request and on the response.
type Plugin struct {
	header []byte
	// custom is true when header is not X-Request-ID: the gateway assigned
	// the id from X-Request-ID, so the client's value in the custom header
	// is consulted here.
	custom bool
}

var (
	_ plugins.Plugin       = (*Plugin)(nil)
	_ plugins.ResponseHook = (*Plugin)(nil)
)

// Handle implements plugins.Plugin.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	st := reqctx.Get(ctx)
	if st == nil {
		return plugins.Next
	}
	if p.custom {
		if v := ctx.Request.Header.PeekBytes(p.header); Valid(v) {
			st.RequestID = append(st.RequestID[:0], v...)
		}
	}
	ctx.Request.Header.SetBytesKV(p.header, st.RequestID)
	return plugins.Next
}

// OnResponse implements plugins.ResponseHook.
func (p *Plugin) OnResponse(ctx *fasthttp.RequestCtx) {
	if st := reqctx.Get(ctx); st != nil {
		ctx.Response.Header.SetBytesKV(p.header, st.RequestID)
	}
}

// Close implements plugins.Plugin.
func (p *Plugin) Close() error { return nil }
