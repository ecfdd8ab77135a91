package blacklist

import (
	"context"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/valyala/fasthttp"
)

var (
	headerWWWAuthenticate = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderWWWAuthenticate)
	revokedChallenge      = []byte(`Bearer error="invalid_token", error_description="token revoked"`)
)

// Handle implements plugins.Plugin. Anonymous requests (jwt with optional:
// true) and identities without a token (an API key) pass: there is no token
// to check.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	st := reqctx.Get(ctx)
	if st == nil || !st.Authenticated || len(st.Token) == 0 {
		return plugins.Next
	}
	revoked, err := p.check(st)
	if err != nil {
		p.storeErrors.Inc()
		if p.allow {
			return plugins.Next
		}
		p.storeReject.Inc()
		apierror.Write(ctx, fasthttp.StatusServiceUnavailable, apierror.CodeUnavailable, "revocation check unavailable")
		return plugins.Done
	}
	if revoked {
		p.revoked.Inc()
		ctx.Response.Header.SetCanonical(headerWWWAuthenticate, revokedChallenge)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, "token revoked")
		return plugins.Done
	}
	return plugins.Next
}

// check asks the store, with a deadline unless the store is in-process
// (whose calls never block). An answer the store holds in memory
// (store.CachedRevocations: Redis with client-side caching) needs no
// deadline. Otherwise the deadline comes from a context shared with the
// calls of the same millisecond, at most 1 ms sooner than store_timeout,
// so a call allocates none.
func (p *Plugin) check(st *reqctx.State) (bool, error) {
	id := &st.Identity
	if p.cached != nil {
		if revoked, ok := p.cached.CachedRevoked(id.JTI, id.Subject, id.IssuedAtMs, p.maxStale); ok {
			return revoked, nil
		}
	}
	if p.local {
		return p.store.IsRevoked(context.Background(), id.JTI, id.Subject, id.IssuedAtMs, p.maxStale)
	}
	c, cancel := store.CallContext(p.timeout)
	defer cancel()
	return p.store.IsRevoked(c, id.JTI, id.Subject, id.IssuedAtMs, p.maxStale)
}
