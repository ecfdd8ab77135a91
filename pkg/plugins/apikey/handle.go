package apikey

import (
	"crypto/sha256"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// headerWWWAuthenticate is in fasthttp's canonical form, as SetCanonical needs.
var headerWWWAuthenticate = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderWWWAuthenticate)

// maxKeyBytes bounds a presented key; longer ones are refused unhashed.
const maxKeyBytes = 512

// Handle implements plugins.Plugin. The presented key is hashed with
// SHA-256 and the digest looked up in a map: the lookup never compares the
// key itself, and the hash leaves nothing a timing attack could learn about
// a stored key from how far a comparison went.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	cred, n := p.credential(ctx)
	switch {
	case n == 0 || (n == 1 && len(cred) == 0):
		if p.optional && n == 0 {
			return plugins.Next
		}
		return p.reject(ctx, p.missing, p.challenge, "missing API key")
	case n > 1 || len(cred) > maxKeyBytes:
		return p.reject(ctx, p.malformed, p.challengeInvalid, "malformed API key")
	}
	k := p.keys[sha256.Sum256(cred)]
	if k == nil {
		return p.reject(ctx, p.unknown, p.challengeInvalid, "invalid API key")
	}
	if k.expires != 0 && p.now().UnixNano() >= k.expires {
		return p.reject(ctx, p.expired, p.challengeInvalid, "API key expired")
	}
	st := reqctx.Get(ctx)
	if st == nil {
		st = reqctx.Acquire(ctx)
	}
	st.Authenticated = true
	st.Token = st.Token[:0]
	id := &st.Identity
	id.Subject = append(id.Subject[:0], k.sub...)
	id.Roles, id.Scopes, id.Headers = k.roles, k.scopes, k.headers
	id.JTI = id.JTI[:0]
	id.IssuedAtMs = 0
	id.ExpiresAt = k.expires / 1e9
	id.SetHeaders(&ctx.Request.Header)
	if !p.keep {
		p.strip(ctx)
	}
	return plugins.Next
}

// credential returns the presented key and how many were presented.
func (p *Plugin) credential(ctx *fasthttp.RequestCtx) ([]byte, int) {
	if p.header != nil {
		var v []byte
		n := 0
		for name, value := range ctx.Request.Header.All() {
			if string(name) == string(p.header) {
				v = value
				n++
			}
		}
		return v, n
	}
	var v []byte
	n := 0
	for name, value := range ctx.QueryArgs().All() {
		if string(name) == string(p.query) {
			v = value
			n++
		}
	}
	return v, n
}

// strip removes the key from the request, so the upstream never sees it.
func (p *Plugin) strip(ctx *fasthttp.RequestCtx) {
	if p.header != nil {
		ctx.Request.Header.DelBytes(p.header)
		return
	}
	ctx.QueryArgs().DelBytes(p.query)
}

func (p *Plugin) reject(ctx *fasthttp.RequestCtx, c *vm.Counter, challenge []byte, msg string) plugins.Verdict {
	c.Inc()
	ctx.Response.Header.SetCanonical(headerWWWAuthenticate, challenge)
	apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msg)
	return plugins.Done
}
