package jwt

import (
	"bytes"
	"io"
	"slices"
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

// appendValueSet appends to dst the normalised values of a roles or scopes
// claim: a string is split on spaces (one role, or a space-separated scope
// list), a list contributes each of its string items. Duplicates and empty
// values are dropped; other types give nothing.
func appendValueSet(dst []string, v any) []string {
	start := len(dst)
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s == "" || slices.Contains(dst[start:], s) {
			return
		}
		dst = append(dst, s)
	}
	switch x := v.(type) {
	case string:
		for f := range strings.FieldsSeq(x) {
			add(f)
		}
	case []any:
		for _, it := range x {
			if s, ok := it.(string); ok {
				add(s)
			}
		}
	}
	return dst
}

// appendHeaderValue appends a forwarded claim's rendering to dst: a string
// as is, a number in its JSON spelling, a list of those comma-separated.
// Booleans and objects are not forwarded (nor are such list items). ok is
// false when the claim gives no header: a list that renders empty, or any
// other type; an empty string is forwarded as an empty value.
func appendHeaderValue(dst []byte, v any) (out []byte, ok bool) {
	x, isList := v.([]any)
	if !isList {
		return appendScalar(dst, v)
	}
	start, n := len(dst), 0
	for _, it := range x {
		switch it.(type) {
		case string, float64:
		default:
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst, _ = appendScalar(dst, it)
		n++
	}
	return dst, len(dst) > start
}

func appendScalar(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case string:
		return append(dst, x...), true
	case float64:
		return strconv.AppendFloat(dst, x, 'f', -1, 64), true
	}
	return dst, false
}

// identityOf extracts what the identity record needs from verified claims
// into e. The entry keeps copies, in one buffer, of the subject, the jti
// and the header values, and nothing of the claims.
func (p *Plugin) identityOf(pr *provider, c jwtlib.MapClaims, sub string, e *entry) {
	m := map[string]any(c)
	// Scratch space for the usual sizes; the entry gets exact copies.
	type span struct{ start, end int }
	var (
		bufScratch   [512]byte
		spansScratch [16]span
		setsScratch  [32]string
	)
	b := append(bufScratch[:0], sub...)
	e.subEnd = len(b)
	if jti, ok := m["jti"].(string); ok {
		b = append(b, jti...)
	}
	e.jtiEnd = len(b)
	// spans holds, per forward, where its value is in b (start -1: absent).
	spans := spansScratch[:0]
	present := 0
	for _, f := range p.forwards {
		sp := span{-1, -1}
		if v, ok := f.claim.lookup(m); ok {
			start := len(b)
			var has bool
			if b, has = appendHeaderValue(b, v); has {
				sp = span{start, len(b)}
				// A value already spelled (often the subject) is shared.
				if i := bytes.Index(b[:start], b[start:]); i >= 0 {
					sp = span{i, i + len(b) - start}
					b = b[:start]
				}
				present++
			}
		}
		spans = append(spans, sp)
	}
	e.buf = slices.Clone(b)
	if present > 0 {
		e.headers = make([]reqctx.Header, 0, present)
		for i, sp := range spans {
			if sp.start >= 0 {
				e.headers = append(e.headers, reqctx.Header{Name: p.forwards[i].header, Value: e.buf[sp.start:sp.end:sp.end]})
			}
		}
	}

	sets := setsScratch[:0]
	if v, ok := pr.roles.lookup(m); ok {
		sets = appendValueSet(sets, v)
	}
	nRoles := len(sets)
	for _, sc := range pr.scopes {
		if v, ok := sc.lookup(m); ok {
			sets = appendValueSet(sets, v)
			break
		}
	}
	e.sets = p.sets.get(sets[:nRoles], sets[nRoles:])
}
