package ipfilter

import (
	"net/netip"
	"unsafe"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// Handle implements plugins.Plugin: a denied client gets 403 forbidden
// with the gateway's JSON error body.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	if p.Allowed(clientAddr(ctx)) {
		return plugins.Next
	}
	p.rejected.Inc()
	apierror.Write(ctx, fasthttp.StatusForbidden, apierror.CodeForbidden, "client address not allowed")
	return plugins.Done
}

// Allowed reports whether a client at a may pass: not in deny, and in allow
// when allow is not empty. An invalid (unknown) address is refused.
func (p *Plugin) Allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if contains(p.deny, a) {
		return false
	}
	return len(p.allow) == 0 || contains(p.allow, a)
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the client address the gateway resolved (honouring
// trusted_proxies), or the peer address when there is no request state.
func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if st := reqctx.Get(ctx); st != nil && len(st.ClientIP) > 0 {
		// ParseAddr keeps no reference to its input (the gateway's client
		// IP has no zone), so the string view does not outlive the call;
		// a copy would cost an allocation per request.
		a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(st.ClientIP), len(st.ClientIP)))
		if err != nil {
			return netip.Addr{}
		}
		return a
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a
}
