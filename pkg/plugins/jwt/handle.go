package jwt

import (
	"bytes"
	"errors"
	"math"
	"slices"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// reason is why a request was refused; several map to one metric label.
type reason uint8

const (
	rMissing reason = iota
	rMalformed
	rMissingSub
	rMissingExp
	rSignature
	rExpired
	rNotYetValid
	rIssuer
	rAudience
	rType
	rAlgorithm
	rCrit
	numReasons
)

// reasons holds, per reason, the metric label and the short description
// used both in the WWW-Authenticate header and in the JSON body.
var reasons = [numReasons]struct{ label, msg string }{
	rMissing:     {metrics.ReasonMissing, "missing bearer token"},
	rMalformed:   {metrics.ReasonMalformed, "malformed token"},
	rMissingSub:  {metrics.ReasonMalformed, "token has no sub claim"},
	rMissingExp:  {metrics.ReasonMalformed, "token has no exp claim"},
	rSignature:   {metrics.ReasonSignature, "invalid token signature"},
	rExpired:     {metrics.ReasonExpired, "token expired"},
	rNotYetValid: {metrics.ReasonNotYetValid, "token not yet valid"},
	rIssuer:      {metrics.ReasonIssuer, "invalid token issuer"},
	rAudience:    {metrics.ReasonAudience, "invalid token audience"},
	rType:        {metrics.ReasonType, "not an access token"},
	rAlgorithm:   {metrics.ReasonAlgorithm, "token algorithm not allowed"},
	rCrit:        {metrics.ReasonMalformed, "token has an unsupported crit header"},
}

// rejection is a precomputed 401 answer.
type rejection struct {
	msg     string
	www     []byte
	counter *vm.Counter
}

func newRejection(r reason, m *metrics.Route) rejection {
	www := `Bearer error="invalid_token", error_description="` + reasons[r].msg + `"`
	if r == rMissing {
		// RFC 6750 §3.1: no error code when the request had no credentials.
		www = `Bearer realm="gatewayd"`
	}
	return rejection{msg: reasons[r].msg, www: []byte(www), counter: m.AuthRejected(reasons[r].label)}
}

// headerWWWAuthenticate is in fasthttp's canonical form, as SetCanonical needs.
var headerWWWAuthenticate = fasthttp.AppendNormalizedHeaderKey(nil, fasthttp.HeaderWWWAuthenticate)

// Errors the key lookup returns; the parser wraps them.
var (
	errUnknownKey    = errors.New("no key we hold can verify the token")
	errBadKid        = errors.New("kid header is not a string")
	errUnknownIssuer = errors.New("no provider has the token's issuer")
	errProviderAlg   = errors.New("the token's algorithm is not one of its provider's")
)

// Handle implements plugins.Plugin.
func (p *Plugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	tok, bad := p.token(ctx)
	switch {
	case bad:
		return p.reject(ctx, rMalformed)
	case tok == nil:
		if p.optional {
			return plugins.Next
		}
		return p.reject(ctx, rMissing)
	case len(tok) > p.maxBytes:
		return p.reject(ctx, rMalformed)
	}
	st := reqctx.Get(ctx)
	if st == nil {
		st = reqctx.Acquire(ctx)
	}
	now := p.now().UnixNano()
	if p.cache != nil {
		if e := p.cache.get(tok); e != nil {
			if e.gen == e.prov.generation() && now < e.deadline && now >= e.nbf-p.leeway {
				p.admit(ctx, st, tok, e)
				return plugins.Next
			}
			p.cache.remove(tok, e)
		}
	}
	// Only well-formed tokens are ever cached, so a hit needs no check.
	if !auth.WellFormed(tok) {
		return p.reject(ctx, rMalformed)
	}
	e, r := p.verify(tok, now)
	if e == nil {
		return p.reject(ctx, r)
	}
	if p.cache != nil {
		p.cache.put(tok, e, now)
	}
	p.admit(ctx, st, tok, e)
	return plugins.Next
}

// token finds the bearer token: the Authorization header, else the
// configured cookie. bad is set for a request that carried credentials we
// must refuse outright (two Authorization headers, an empty Bearer).
func (p *Plugin) token(ctx *fasthttp.RequestCtx) (tok []byte, bad bool) {
	vals := ctx.Request.Header.PeekAll(fasthttp.HeaderAuthorization)
	switch len(vals) {
	case 0:
	case 1:
		v := vals[0]
		// RFC 6750 §2.1 with a case-insensitive scheme (RFC 9110 §11.1).
		if len(v) >= 6 && asciiFoldEq(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ' || v[6] == '\t') {
			t := trimSpace(v[6:])
			if len(t) == 0 {
				return nil, true
			}
			return t, false
		}
		// Another scheme (Basic, ...) is not ours: look for the cookie.
	default:
		return nil, true
	}
	if p.cookie != "" {
		if c := ctx.Request.Header.Cookie(p.cookie); len(c) > 0 {
			return c, false
		}
	}
	return nil, false
}

// admit records the identity and forwards the claims.
func (p *Plugin) admit(ctx *fasthttp.RequestCtx, st *reqctx.State, tok []byte, e *entry) {
	id := &st.Identity
	st.Authenticated = true
	id.Subject = append(id.Subject[:0], e.subject()...)
	id.Roles, id.Scopes, id.Headers = nil, nil, e.headers
	if e.sets != nil {
		id.Roles, id.Scopes = e.sets.roles, e.sets.scopes
	}
	id.JTI = append(id.JTI[:0], e.jti()...)
	id.IssuedAtMs = e.iatMs
	id.ExpiresAt = e.exp
	st.Token = append(st.Token[:0], tok...)
	// e.headers follows p.forwards: a forward that is not next in it is
	// absent from the token.
	hs := e.headers
	for i := range p.forwards {
		name := p.forwards[i].header
		if len(hs) > 0 && bytes.Equal(hs[0].Name, name) {
			hs = hs[1:]
			continue
		}
		ctx.Request.Header.DelBytes(name)
	}
	id.SetHeaders(&ctx.Request.Header)
}

func (p *Plugin) reject(ctx *fasthttp.RequestCtx, r reason) plugins.Verdict {
	rj := &p.rejects[r]
	rj.counter.Inc()
	ctx.Response.Header.SetCanonical(headerWWWAuthenticate, rj.www)
	apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, rj.msg)
	return plugins.Done
}

// verify parses and checks tok with golang-jwt and extracts what the
// request needs. It returns a nil entry and the reason on failure.
func (p *Plugin) verify(tok []byte, now int64) (*entry, reason) {
	claims := jwtlib.MapClaims{}
	var (
		pr  *provider
		gen uint64
	)
	t, err := p.parser.ParseWithClaims(string(tok), claims, func(t *jwtlib.Token) (any, error) {
		var key any
		var err error
		pr, gen, key, err = p.key(t)
		return key, err
	})
	if err != nil {
		return nil, p.classify(err, t, claims)
	}
	if !pr.audienceOK(claims) {
		return nil, rAudience
	}
	if !pr.typeOK(t.Header, claims) {
		return nil, rType
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, rMissingSub
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, rMissingExp
	}
	e := &entry{
		prov: pr,
		exp:  exp.Unix(),
		gen:  gen,
	}
	if iat, ok := claims["iat"].(float64); ok {
		e.iatMs = int64(math.Round(iat * 1000))
	}
	if nbf, _ := claims.GetNotBefore(); nbf != nil {
		e.nbf = unixNano(nbf.Unix())
	}
	e.deadline = min(satAdd(unixNano(e.exp), p.leeway), satAdd(now, p.cacheTTL))
	p.identityOf(pr, claims, sub, e)
	return e, 0
}

// classify maps a golang-jwt error to a reason.
func (p *Plugin) classify(err error, t *jwtlib.Token, claims jwtlib.MapClaims) reason {
	switch {
	case errors.Is(err, auth.ErrCritHeader):
		return rCrit
	case errors.Is(err, errBadKid), errors.Is(err, jwtlib.ErrTokenMalformed):
		return rMalformed
	case errors.Is(err, errUnknownIssuer):
		return rIssuer
	case errors.Is(err, errProviderAlg):
		return rAlgorithm
	case errors.Is(err, errUnknownKey):
		return rSignature
	case t != nil && t.Method != nil && !p.allowed(t.Method.Alg()),
		errors.Is(err, jwtlib.ErrTokenUnverifiable):
		return rAlgorithm
	case errors.Is(err, jwtlib.ErrTokenSignatureInvalid):
		return rSignature
	case errors.Is(err, jwtlib.ErrTokenExpired):
		return rExpired
	case errors.Is(err, jwtlib.ErrTokenNotValidYet), errors.Is(err, jwtlib.ErrTokenUsedBeforeIssued):
		return rNotYetValid
	case errors.Is(err, jwtlib.ErrTokenInvalidIssuer):
		return rIssuer
	case errors.Is(err, jwtlib.ErrTokenInvalidAudience):
		return rAudience
	case errors.Is(err, jwtlib.ErrTokenRequiredClaimMissing):
		// The validator names the missing claim only in its message.
		if claims["exp"] == nil {
			return rMissingExp
		}
		return rMalformed
	}
	return rMalformed
}

func (p *Plugin) allowed(alg string) bool {
	for _, a := range p.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// key chooses the key that may verify t: the provider named by the token's
// iss (nothing else the token says picks a provider), then, within that
// provider's keys, the kid. A provider's keys verify only its own
// algorithms, so an HS256 token naming an RS256 provider finds no key, and
// a token signed by one provider but naming another fails its signature.
// It never fetches keys named by the token (jku, x5u, jwk headers are
// ignored). It also returns the provider and its key-set generation.
func (p *Plugin) key(t *jwtlib.Token) (*provider, uint64, any, error) {
	// Before any key is chosen, so a token we must refuse never makes a
	// JWKS refetch.
	if err := auth.CheckCrit(t.Header); err != nil {
		return nil, 0, nil, err
	}
	pr := p.providerOf(t.Claims)
	if pr == nil {
		return nil, 0, nil, errUnknownIssuer
	}
	alg := t.Method.Alg()
	if !slices.Contains(pr.algs, alg) {
		return nil, 0, nil, errProviderAlg
	}
	if pr.secret != nil {
		return pr, 0, pr.secret, nil
	}
	kid := ""
	if v, ok := t.Header["kid"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, 0, nil, errBadKid
		}
		kid = s
	}
	ks, gen := pr.static, uint64(0)
	if pr.remote != nil {
		ks, gen = pr.remote.keys()
		if ks == nil || (kid != "" && ks.byKid[kid] == nil) {
			if pr.remote.refetchUnknown() {
				ks, gen = pr.remote.keys()
			}
		}
		if ks == nil {
			return nil, 0, nil, errUnknownKey
		}
	}
	candidates := ks.all
	if kid != "" {
		candidates = ks.byKid[kid]
	}
	var set jwtlib.VerificationKeySet
	for _, k := range candidates {
		if k.fits(alg) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	switch len(set.Keys) {
	case 0:
		return nil, 0, nil, errUnknownKey
	case 1:
		return pr, gen, set.Keys[0], nil
	}
	return pr, gen, set, nil
}

// providerOf returns the provider the token's iss names, or nil.
func (p *Plugin) providerOf(c jwtlib.Claims) *provider {
	if mc, ok := c.(jwtlib.MapClaims); ok {
		if iss, ok := mc["iss"].(string); ok {
			if pr := p.byIssuer[iss]; pr != nil {
				return pr
			}
		}
	}
	return p.anyIssuer
}

func unixNano(sec int64) int64 {
	if sec > math.MaxInt64/int64(1e9) {
		return math.MaxInt64
	}
	if sec < math.MinInt64/int64(1e9) {
		return math.MinInt64
	}
	return sec * 1e9
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func asciiFoldEq(b []byte, lower string) bool {
	for i := range len(lower) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
