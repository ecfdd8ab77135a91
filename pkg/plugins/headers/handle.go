package headers

import (
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

// Handle implements plugins.Plugin: it edits the request before it is
// forwarded (remove, then set, then add). It runs after the gateway's
// header hygiene, so a removed header is gone whatever the client sent.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	e := &p.request
	if e.empty() {
		return plugins.Next
	}
	h := &ctx.Request.Header
	for i := range e.remove {
		h.DelBytes(e.remove[i].name)
	}
	for i := range e.set {
		// SetCanonical replaces the first value only.
		h.DelBytes(e.set[i].name)
		h.SetCanonical(e.set[i].name, e.set[i].value)
	}
	for i := range e.add {
		h.AddBytesKV(e.add[i].name, e.add[i].value)
	}
	return plugins.Next
}

// OnResponse implements plugins.ResponseHook: it edits the response the
// client gets, the upstream's or the gateway's own (an error a later plugin
// or the upstream call answered with), in the same order.
func (p *Plugin) OnResponse(ctx *fasthttp.RequestCtx) {
	e := &p.response
	if e.empty() {
		return
	}
	h := &ctx.Response.Header
	for i := range e.remove {
		h.DelBytes(e.remove[i].name)
	}
	for i := range e.set {
		// SetCanonical replaces the first value only.
		h.DelBytes(e.set[i].name)
		h.SetCanonical(e.set[i].name, e.set[i].value)
	}
	for i := range e.add {
		h.AddBytesKV(e.add[i].name, e.add[i].value)
	}
}
