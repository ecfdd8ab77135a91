package jwt

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// provider is one compiled identity provider: its issuer, its keys (a
// secret, a static key set or a remote JWKS, exactly one) and the shape of
// its access tokens. Its keys verify only tokens whose iss names it, and
// only with its own algorithms.
type provider struct {
	issuer string
	// label names the provider in metrics and logs: the issuer, or the
	// redacted jwks_url for the single-provider form without one.
	label    string
	algs     []string
	audience []string // any of them; empty: not checked
	// typ holds the accepted types, normalised by normType; checkTyp is
	// false for typ: [].
	typ      []string
	checkTyp bool
	// typClaim is the claim compared with typ besides the JOSE header
	// (Cognito says token_use).
	typClaim claimPath
	roles    claimPath
	// scopes are tried in order; the first claim present is used.
	scopes []claimPath

	secret  []byte
	static  *keySet
	file    plugins.File // public_key_file or jwks_file as read
	remote  *remoteKeys
	release func() error
}

// acquireRemote shares one downloader per URL, intervals and provider
// across instances and reloads.
func (pr *provider) acquireRemote(env *plugins.Env, ps *providerSpec, log *zap.Logger, now func() time.Time) error {
	opts := remoteOptions{url: ps.jwksURL, refresh: ps.refresh, refetch: ps.refetch, provider: pr.label}
	create := func() (io.Closer, error) { return newRemoteKeys(opts, log, now), nil }
	if env == nil || env.Resources == nil {
		rk, _ := create()
		pr.remote = rk.(*remoteKeys)
		pr.release = rk.Close
		return nil
	}
	key := "jwt/jwks " + opts.url + " " + opts.refresh.String() + " " + opts.refetch.String() + " " + strconv.Quote(opts.provider)
	c, release, err := env.Resources.Acquire(key, create)
	if err != nil {
		return err
	}
	pr.remote = c.(*remoteKeys)
	pr.release = release
	return nil
}

// generation is the provider's key-set generation: it changes whenever a
// remote set is replaced, so cached tokens are verified again.
func (pr *provider) generation() uint64 {
	if pr.remote != nil {
		return pr.remote.gen.Load()
	}
	return 0
}

// audienceOK reports whether the token's aud holds one of the provider's
// audiences (always, when none is configured).
func (pr *provider) audienceOK(c jwtlib.MapClaims) bool {
	if len(pr.audience) == 0 {
		return true
	}
	aud, err := c.GetAudience()
	if err != nil {
		return false
	}
	for _, a := range aud {
		for _, want := range pr.audience {
			if a == want {
				return true
			}
		}
	}
	return false
}

// typeOK reports whether the token's typ claim (typ_claim) or its JOSE
// header typ is one the provider accepts (always, with typ: []). Auth0
// access tokens carry no typ claim, Keycloak's say "Bearer", Cognito's
// token_use says "access", RFC 9068 ones have the header typ "at+jwt" (a
// media type, so "application/at+jwt" is the same).
func (pr *provider) typeOK(header map[string]any, c jwtlib.MapClaims) bool {
	if !pr.checkTyp {
		return true
	}
	claim, _ := pr.typClaim.lookup(c)
	for _, v := range [...]any{claim, header["typ"]} {
		s, ok := v.(string)
		if !ok {
			continue
		}
		n := normType(s)
		for _, want := range pr.typ {
			if n == want {
				return true
			}
		}
	}
	return false
}

// normType folds a type for comparison: case does not matter and a media
// type's "application/" prefix may be left out (RFC 7515 §4.1.9).
func normType(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "application/")
}

// claimPath names a claim: a claim whose whole name is name is used as is
// (Auth0's "https://example.com/roles"); otherwise name is a dotted path
// into nested objects ("realm_access.roles").
type claimPath struct {
	name string
	path []string // nil when name has no dot
}

func newClaimPath(name string) claimPath {
	c := claimPath{name: name}
	if strings.Contains(name, ".") {
		c.path = strings.Split(name, ".")
	}
	return c
}

// String returns the claim name as configured.
func (c claimPath) String() string { return c.name }

// lookup returns the claim's value in claims.
func (c claimPath) lookup(claims map[string]any) (any, bool) {
	if v, ok := claims[c.name]; ok {
		return v, true
	}
	if len(c.path) < 2 {
		return nil, false
	}
	var cur any = claims
	for _, seg := range c.path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// valueSet normalises a roles or scopes value: a string is split on spaces
// (one role, or a space-separated scope list), a list contributes each of
// its string items. Duplicates and empty values are dropped; other types
// give nothing.
func valueSet(v any) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" {
			return
		}
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	switch x := v.(type) {
	case string:
		for _, f := range strings.Fields(x) {
			add(f)
		}
	case []any:
		for _, it := range x {
			if s, ok := it.(string); ok {
				add(s)
			}
		}
	}
	return out
}

// headerValue renders a forwarded claim: a string as is, a number in its
// JSON spelling, a list of those comma-separated. Booleans and objects are
// not forwarded (nor are such list items).
func headerValue(v any) []byte {
	switch x := v.(type) {
	case []any:
		var b []byte
		n := 0
		for _, it := range x {
			s := scalarValue(it)
			if s == nil {
				continue
			}
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, s...)
			n++
		}
		if n == 0 {
			return nil
		}
		return b
	default:
		return scalarValue(v)
	}
}

func scalarValue(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case float64:
		return strconv.AppendFloat(nil, x, 'f', -1, 64)
	}
	return nil
}

// identityOf extracts what the identity record needs from verified claims.
func (p *Plugin) identityOf(pr *provider, c jwtlib.MapClaims, e *entry) {
	m := map[string]any(c)
	if v, ok := pr.roles.lookup(m); ok {
		e.roles = valueSet(v)
	}
	for _, sc := range pr.scopes {
		if v, ok := sc.lookup(m); ok {
			e.scopes = valueSet(v)
			break
		}
	}
	for _, f := range p.forwards {
		v, ok := f.claim.lookup(m)
		var val []byte
		if ok {
			val = headerValue(v)
		}
		if val == nil {
			e.absent = append(e.absent, f.header)
			continue
		}
		e.headers = append(e.headers, reqctx.Header{Name: f.header, Value: val})
	}
}
