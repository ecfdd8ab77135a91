package rbac

import (
	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

var (
	headerWWWAuthenticate = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderWWWAuthenticate)
	// RFC 6750 §3.1: no error code without credentials; insufficient_scope
	// for a token that lacks the privileges.
	challengeMissing   = []byte(`Bearer realm="gatewayd"`)
	challengeForbidden = []byte(`Bearer error="insufficient_scope"`)
)

// Handle implements plugins.Plugin.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	st := reqctx.Get(ctx)
	if st == nil || !st.Authenticated {
		p.missing.Inc()
		ctx.Response.Header.SetCanonical(headerWWWAuthenticate, challengeMissing)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, "authentication required")
		return plugins.Done
	}
	if pol := p.policyFor(ctx.Method()); pol != nil && pol.allows(&st.Identity) {
		return plugins.Next
	}
	p.forbidden.Inc()
	ctx.Response.Header.SetCanonical(headerWWWAuthenticate, challengeForbidden)
	apierror.Write(ctx, fasthttp.StatusForbidden, apierror.CodeForbidden, "insufficient permissions")
	return plugins.Done
}

// policyFor returns the first rule covering method, else the top level, or
// nil when no rule covers it and there is no top-level policy. Methods are
// compared case-sensitively: "get" is not covered by a GET rule.
func (p *Plugin) policyFor(method []byte) *policy {
	for i := range p.rules {
		for _, m := range p.rules[i].methods {
			if string(method) == m {
				return &p.rules[i].policy
			}
		}
	}
	if p.denyOthers {
		return nil
	}
	return &p.top
}

// allows reports whether id has one of the roles (when any are listed) and
// every scope. Both are checked against the identity's normalised sets, so
// a role from a list claim, a space-separated claim or an API key counts
// the same.
func (pol *policy) allows(id *reqctx.Identity) bool {
	if len(pol.roles) > 0 {
		ok := false
		for _, r := range pol.roles {
			if id.HasRole(r) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, want := range pol.scopes {
		if !id.HasScope(want) {
			return false
		}
	}
	return true
}
