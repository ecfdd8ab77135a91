package jwt

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

const hsConfig = "secret: " + testSecret + `
issuer: gatewayd-auth
audience: api
forward_claims: {sub: X-User-ID, role: X-User-Role, email: X-User-Email, tenant: X-Tenant, admin: X-Admin}
`

// TestHandleHostileClients runs one request per case through an HS256
// plugin (leeway 30s, clock at t0) and checks the verdict, the status, the
// WWW-Authenticate header, the JSON body and the metric reason.
func TestHandleHostileClients(t *testing.T) {
	k := getKeys(t)
	hs := jwtlib.SigningMethodHS256
	good := mint(t, hs, []byte(testSecret), claims(), "")
	parts := strings.Split(good, ".")
	type tc struct {
		name       string
		giveYAML   string // default hsConfig
		givePrep   func(r *fasthttp.Request)
		wantReason string // "" => accepted
		wantDesc   string
	}
	tests := []tc{
		{name: "valid", givePrep: bearer(good)},
		{name: "lower-case scheme", givePrep: func(r *fasthttp.Request) { r.Header.Set("Authorization", "bearer "+good) }},
		{name: "upper-case scheme and extra spaces", givePrep: func(r *fasthttp.Request) { r.Header.Set("Authorization", "BEARER   "+good) }},
		{
			name:       "no token",
			wantReason: metrics.ReasonMissing, wantDesc: "missing bearer token",
		},
		{
			name:       "token in the query string is ignored",
			givePrep:   func(r *fasthttp.Request) { r.SetRequestURI("/v1/users/me?access_token=" + good) },
			wantReason: metrics.ReasonMissing, wantDesc: "missing bearer token",
		},
		{
			name:       "basic credentials are not a bearer token",
			givePrep:   func(r *fasthttp.Request) { r.Header.Set("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l") },
			wantReason: metrics.ReasonMissing, wantDesc: "missing bearer token",
		},
		{
			name:       "cookie without a cookie setting is ignored",
			givePrep:   func(r *fasthttp.Request) { r.Header.SetCookie("session", good) },
			wantReason: metrics.ReasonMissing, wantDesc: "missing bearer token",
		},
		{
			name:     "cookie source",
			giveYAML: hsConfig + "cookie: session\n",
			givePrep: func(r *fasthttp.Request) { r.Header.SetCookie("session", good) },
		},
		{
			name:     "header wins over cookie",
			giveYAML: hsConfig + "cookie: session\n",
			givePrep: func(r *fasthttp.Request) {
				r.Header.SetCookie("session", good)
				r.Header.Set("Authorization", "Bearer "+good+"x")
			},
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "empty bearer",
			givePrep:   func(r *fasthttp.Request) { r.Header.Set("Authorization", "Bearer ") },
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name: "two Authorization headers",
			givePrep: func(r *fasthttp.Request) {
				r.Header.Add("Authorization", "Bearer "+good)
				r.Header.Add("Authorization", "Bearer "+good)
			},
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "forged signature",
			givePrep:   bearer(mint(t, hs, []byte(strings.Repeat("k", 32)), claims(), "")),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "payload swapped under a valid signature",
			givePrep:   bearer(parts[0] + "." + b64(`{"iss":"gatewayd-auth","aud":"api","sub":"root","role":"admin","typ":"access","exp":9999999999}`) + "." + parts[2]),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "crit with an unknown extension",
			givePrep:   bearer(mintHeader(t, "crit", []string{"http://example.com/ext"})),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has an unsupported crit header",
		},
		{
			name:       "crit naming a registered claim",
			givePrep:   bearer(mintHeader(t, "crit", []string{"exp"})),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has an unsupported crit header",
		},
		{
			name:       "empty crit",
			givePrep:   bearer(mintHeader(t, "crit", []string{})),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has an unsupported crit header",
		},
		{
			name:       "crit not a list",
			givePrep:   bearer(mintHeader(t, "crit", "exp")),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has an unsupported crit header",
		},
		{
			name:       "alg none",
			givePrep:   bearer(mint(t, jwtlib.SigningMethodNone, jwtlib.UnsafeAllowNoneSignatureType, claims(), "") + "c2ln"),
			wantReason: metrics.ReasonAlgorithm, wantDesc: "token algorithm not allowed",
		},
		{
			name:       "alg none without a signature",
			givePrep:   bearer(mint(t, jwtlib.SigningMethodNone, jwtlib.UnsafeAllowNoneSignatureType, claims(), "")),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "HS512 not in algorithms",
			givePrep:   bearer(mint(t, jwtlib.SigningMethodHS512, []byte(testSecret+testSecret), claims(), "")),
			wantReason: metrics.ReasonAlgorithm, wantDesc: "token algorithm not allowed",
		},
		{
			name:       "unknown alg",
			givePrep:   bearer(b64(`{"alg":"XX999","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]),
			wantReason: metrics.ReasonAlgorithm, wantDesc: "token algorithm not allowed",
		},
		{
			name:       "expired by 1s within leeway",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "exp", t0.Unix()-1), "")),
			wantReason: "",
		},
		{
			name:       "expired by 1s without leeway",
			giveYAML:   hsConfig + "leeway: 0\n",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "exp", t0.Unix()-1), "")),
			wantReason: metrics.ReasonExpired, wantDesc: "token expired",
		},
		{
			name:       "expired beyond leeway",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "exp", t0.Unix()-31), "")),
			wantReason: metrics.ReasonExpired, wantDesc: "token expired",
		},
		{
			name:       "nbf in the future",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "nbf", t0.Unix()+60), "")),
			wantReason: metrics.ReasonNotYetValid, wantDesc: "token not yet valid",
		},
		{
			name:     "nbf within leeway",
			givePrep: bearer(mint(t, hs, []byte(testSecret), with(claims(), "nbf", t0.Unix()+20), "")),
		},
		{
			name:       "iat in the future",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "iat", t0.Unix()+3600), "")),
			wantReason: metrics.ReasonNotYetValid, wantDesc: "token not yet valid",
		},
		{
			name:       "wrong iss",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "iss", "evil"), "")),
			wantReason: metrics.ReasonIssuer, wantDesc: "invalid token issuer",
		},
		{
			name:       "missing iss",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "iss", nil), "")),
			wantReason: metrics.ReasonIssuer, wantDesc: "invalid token issuer",
		},
		{
			name:       "wrong aud",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "aud", "billing"), "")),
			wantReason: metrics.ReasonAudience, wantDesc: "invalid token audience",
		},
		{
			name:       "missing aud",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "aud", nil), "")),
			wantReason: metrics.ReasonAudience, wantDesc: "invalid token audience",
		},
		{
			name:     "aud list containing ours",
			givePrep: bearer(mint(t, hs, []byte(testSecret), with(claims(), "aud", []string{"billing", "api"}), "")),
		},
		{
			name:       "missing sub",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "sub", nil), "")),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has no sub claim",
		},
		{
			name:       "sub not a string",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "sub", 42), "")),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has no sub claim",
		},
		{
			name:       "missing exp",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "exp", nil), "")),
			wantReason: metrics.ReasonMalformed, wantDesc: "token has no exp claim",
		},
		{
			name:       "exp not a number",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "exp", "tomorrow"), "")),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "typ refresh",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "typ", "refresh"), "")),
			wantReason: metrics.ReasonType, wantDesc: "not an access token",
		},
		{
			name:       "typ missing",
			givePrep:   bearer(mint(t, hs, []byte(testSecret), with(claims(), "typ", nil), "")),
			wantReason: metrics.ReasonType, wantDesc: "not an access token",
		},
		{
			// 40 characters are exactly 30 bytes: a canonical encoding of a
			// signature that is too short.
			name:       "truncated signature",
			givePrep:   bearer(good[:len(good)-3]),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "truncated to two parts",
			givePrep:   bearer(parts[0] + "." + parts[1]),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "truncated payload",
			givePrep:   bearer(parts[0] + "." + parts[1][:len(parts[1])/4*4+1] + "." + parts[2]),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "padded base64",
			givePrep:   bearer(good + "="),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "standard base64 alphabet",
			givePrep:   bearer(parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+/"),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "64 KiB token",
			givePrep:   bearer(parts[0] + "." + strings.Repeat("A", 64<<10) + "." + parts[2]),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "three dots",
			givePrep:   bearer(good + ".e30"),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "empty part",
			givePrep:   bearer(parts[0] + ".." + parts[2]),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "header not JSON",
			givePrep:   bearer(b64("not json") + "." + parts[1] + "." + parts[2]),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
		{
			name:       "optional without a token",
			giveYAML:   hsConfig + "optional: true\n",
			wantReason: "anonymous",
		},
		{
			name:       "optional with a bad token",
			giveYAML:   hsConfig + "optional: true\n",
			givePrep:   bearer(good + "x"),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
	}

	// Public-key configurations.
	dir := t.TempDir()
	rsaPEM := writePEM(t, dir, "rsa.pem", &k.rsa.PublicKey)
	pemBytes, err := os.ReadFile(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	rsCfg := "algorithms: [RS256]\npublic_key_file: " + rsaPEM + "\n"
	esCfg := "algorithms: [ES256]\npublic_key_file: " + writePEM(t, dir, "ec.pem", &k.ec256.PublicKey) + "\n"
	edCfg := "algorithms: [EdDSA]\npublic_key_file: " + writePEM(t, dir, "ed.pem", k.ed.Public()) + "\n"
	jwksCfg := "algorithms: [RS256, ES256, EdDSA]\njwks_file: " + writeFile(t, dir, "jwks.json",
		jwksDoc(t, []string{"r1", "e1", "d1", "r2"}, []any{&k.rsa.PublicKey, &k.ec256.PublicKey, k.ed.Public(), &k.rsa2.PublicKey})) + "\n"
	tests = append(tests, []tc{
		{name: "RS256", giveYAML: rsCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), ""))},
		{
			name:       "RS256 signed by another key",
			giveYAML:   rsCfg,
			givePrep:   bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa2, claims(), "")),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "HS256 signed with the RSA public key PEM as secret",
			giveYAML:   rsCfg,
			givePrep:   bearer(mint(t, hs, pemBytes, claims(), "")),
			wantReason: metrics.ReasonAlgorithm, wantDesc: "token algorithm not allowed",
		},
		{
			name:     "embedded jwk header is not trusted",
			giveYAML: rsCfg,
			givePrep: func(r *fasthttp.Request) {
				tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, claims())
				tok.Header["jwk"] = jwkOf(t, "", &k.rsa2.PublicKey)
				tok.Header["jku"] = "https://evil.example.com/jwks.json"
				s, err := tok.SignedString(k.rsa2)
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("Authorization", "Bearer "+s)
			},
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{name: "ES256", giveYAML: esCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodES256, k.ec256, claims(), ""))},
		{name: "EdDSA", giveYAML: edCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodEdDSA, k.ed, claims(), ""))},
		{name: "JWKS file RS256 by kid", giveYAML: jwksCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "r1"))},
		{name: "JWKS file second RSA key by kid", giveYAML: jwksCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa2, claims(), "r2"))},
		{name: "JWKS file ES256 by kid", giveYAML: jwksCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodES256, k.ec256, claims(), "e1"))},
		{name: "JWKS file EdDSA by kid", giveYAML: jwksCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodEdDSA, k.ed, claims(), "d1"))},
		{name: "JWKS file without kid tries the fitting keys", giveYAML: jwksCfg, givePrep: bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa2, claims(), ""))},
		{
			name:       "JWKS kid naming another key",
			giveYAML:   jwksCfg,
			givePrep:   bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa2, claims(), "r1")),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "JWKS kid of a key of another type",
			giveYAML:   jwksCfg,
			givePrep:   bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "e1")),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:       "JWKS unknown kid",
			giveYAML:   jwksCfg,
			givePrep:   bearer(mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "nope")),
			wantReason: metrics.ReasonSignature, wantDesc: "invalid token signature",
		},
		{
			name:     "JWKS kid not a string",
			giveYAML: jwksCfg,
			givePrep: func(r *fasthttp.Request) {
				tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, claims())
				tok.Header["kid"] = 7
				s, err := tok.SignedString(k.rsa)
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("Authorization", "Bearer "+s)
			},
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		},
	}...)

	for i, m := range spellings(t, good) {
		tests = append(tests, tc{
			name:       "other spelling " + strconv.Itoa(i+1) + " of a valid token",
			givePrep:   bearer(m),
			wantReason: metrics.ReasonMalformed, wantDesc: "malformed token",
		})
	}

	clk := newClock(t0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "hostile-" + strings.ReplaceAll(tt.name, " ", "-")
			cfg := tt.giveYAML
			if cfg == "" {
				cfg = hsConfig
			}
			env := clk.env(route)
			p := mustBuild(t, cfg, env)
			label := tt.wantReason
			if label == "" || label == "anonymous" {
				label = metrics.ReasonMissing
			}
			before := rejected(route, label)
			res := run(t, p, tt.givePrep)
			after := rejected(route, label)
			switch tt.wantReason {
			case "":
				if res.verdict != plugins.Next || !res.st.Authenticated {
					t.Fatalf("verdict %v, authenticated %v, status %d %q; want accepted", res.verdict, res.st.Authenticated, res.status, res.message)
				}
				if got := string(res.st.Identity.Subject); got != "user-1" {
					t.Errorf("subject = %q, want user-1", got)
				}
			case "anonymous":
				if res.verdict != plugins.Next || res.st.Authenticated {
					t.Fatalf("verdict %v, authenticated %v; want anonymous pass", res.verdict, res.st.Authenticated)
				}
			default:
				if res.verdict != plugins.Done || res.status != fasthttp.StatusUnauthorized {
					t.Fatalf("verdict %v status %d; want Done 401", res.verdict, res.status)
				}
				if res.st.Authenticated {
					t.Error("state is authenticated after a rejection")
				}
				wantWWW := wantInvalid(tt.wantDesc)
				if tt.wantReason == metrics.ReasonMissing {
					wantWWW = `Bearer realm="gatewayd"`
				}
				if res.www != wantWWW {
					t.Errorf("WWW-Authenticate = %q, want %q", res.www, wantWWW)
				}
				if res.code != "unauthorized" || res.message != tt.wantDesc {
					t.Errorf("body error=%q message=%q, want unauthorized %q", res.code, res.message, tt.wantDesc)
				}
				if after != before+1 {
					t.Errorf("gateway_auth_rejected_total{reason=%q} went %d -> %d, want +1", label, before, after)
				}
			}
		})
	}
}

func TestHandleFillsIdentityAndForwardsClaims(t *testing.T) {
	clk := newClock(t0)
	p := mustBuild(t, hsConfig, clk.env("identity"))
	c := with(claims(), "tenant", 42, "admin", true, "iat", 1699999989.5)
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), c, "")
	for _, pass := range []string{"verified", "cached"} {
		t.Run(pass, func(t *testing.T) {
			res := run(t, p, func(r *fasthttp.Request) {
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set("X-User-Role", "spoofed")
				r.Header.Set("X-Admin", "spoofed")
			})
			if res.verdict != plugins.Next {
				t.Fatalf("verdict %v status %d %q", res.verdict, res.status, res.message)
			}
			id := res.st.Identity
			for _, f := range []struct{ name, got, want string }{
				{"Subject", string(id.Subject), "user-1"},
				{"Roles", strings.Join(id.Roles, ","), "admin"},
				{"Scopes", strings.Join(id.Scopes, ","), "users:read,users:write"},
				{"JTI", string(id.JTI), "jti-1"},
				{"Token", string(res.st.Token), tok},
				{"X-User-ID", string(res.ctx.Request.Header.Peek("X-User-ID")), "user-1"},
				{"X-User-Role", string(res.ctx.Request.Header.Peek("X-User-Role")), "admin"},
				{"X-User-Email", string(res.ctx.Request.Header.Peek("X-User-Email")), "ann@example.com"},
				{"X-Tenant", string(res.ctx.Request.Header.Peek("X-Tenant")), "42"},
				{"X-Admin (bool, skipped and removed)", string(res.ctx.Request.Header.Peek("X-Admin")), ""},
			} {
				if f.got != f.want {
					t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
				}
			}
			if id.IssuedAtMs != 1699999989500 {
				t.Errorf("IssuedAtMs = %d, want 1699999989500", id.IssuedAtMs)
			}
			if id.ExpiresAt != t0.Unix()+600 {
				t.Errorf("ExpiresAt = %d, want %d", id.ExpiresAt, t0.Unix()+600)
			}
		})
	}
}

func TestCacheChecksExpiryOnEveryHit(t *testing.T) {
	clk := newClock(t0)
	p := mustBuild(t, hsConfig+"leeway: 5s\n", clk.env("cache-expiry"))
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "exp", t0.Unix()+60), "")
	if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
		t.Fatalf("first request: status %d %q", res.status, res.message)
	}
	if p.cache.get([]byte(tok)) == nil {
		t.Fatal("verified token was not cached")
	}
	clk.advance(64 * time.Second)
	if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
		t.Fatalf("within leeway: status %d %q", res.status, res.message)
	}
	clk.advance(2 * time.Second)
	res := run(t, p, bearer(tok))
	if res.status != fasthttp.StatusUnauthorized || res.message != "token expired" {
		t.Fatalf("after exp+leeway: status %d %q, want 401 token expired", res.status, res.message)
	}
	if p.cache.get([]byte(tok)) != nil {
		t.Error("expired token is still cached")
	}
}

func TestCacheTTLForcesReverification(t *testing.T) {
	clk := newClock(t0)
	p := mustBuild(t, hsConfig+"cache_ttl: 10s\n", clk.env("cache-ttl"))
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	run(t, p, bearer(tok))
	first := p.cache.get([]byte(tok))
	clk.advance(5 * time.Second)
	run(t, p, bearer(tok))
	if p.cache.get([]byte(tok)) != first {
		t.Fatal("entry replaced before cache_ttl")
	}
	clk.advance(6 * time.Second)
	if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
		t.Fatalf("status %d %q", res.status, res.message)
	}
	if e := p.cache.get([]byte(tok)); e == first || e == nil {
		t.Fatal("entry not re-verified after cache_ttl")
	}
}

func TestCacheNeverStoresFailures(t *testing.T) {
	p := mustBuild(t, hsConfig, newClock(t0).env("cache-failures"))
	bad := []string{
		mint(t, jwtlib.SigningMethodHS256, []byte(strings.Repeat("x", 32)), claims(), ""),
		mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "typ", "refresh"), ""),
		mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "exp", t0.Unix()-3600), ""),
	}
	for _, tok := range bad {
		if res := run(t, p, bearer(tok)); res.status != fasthttp.StatusUnauthorized {
			t.Fatalf("status %d, want 401", res.status)
		}
	}
	if n := p.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after failures, want 0", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	p := mustBuild(t, hsConfig+"cache_size: 100\n", newClock(t0).env("cache-bound"))
	limit := cacheShards * ((100 + cacheShards - 1) / cacheShards)
	for i := range 1000 {
		tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "jti", i), "")
		if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
			t.Fatalf("status %d %q", res.status, res.message)
		}
	}
	if n := p.cache.len(); n > limit || n == 0 {
		t.Errorf("cache holds %d entries, want 1..%d", n, limit)
	}
}

func TestCacheOff(t *testing.T) {
	p := mustBuild(t, hsConfig+"cache_size: 0\n", newClock(t0).env("cache-off"))
	if p.cache != nil {
		t.Fatal("cache_size: 0 built a cache")
	}
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	for range 2 {
		if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
			t.Fatalf("status %d %q", res.status, res.message)
		}
	}
}

// TestCachedTokenComparedInFull checks that a token differing from a cached
// one only in its last byte is verified, not served from the cache.
func TestCachedTokenComparedInFull(t *testing.T) {
	p := mustBuild(t, hsConfig, newClock(t0).env("cache-compare"))
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	run(t, p, bearer(tok))
	// Both replacements leave the spare bits zero: the token is canonical
	// and only its signature is wrong.
	last := tok[len(tok)-1]
	alt := byte('A')
	if last == 'A' {
		alt = 'Q'
	}
	res := run(t, p, bearer(tok[:len(tok)-1]+string(alt)))
	if res.status != fasthttp.StatusUnauthorized || res.message != "invalid token signature" {
		t.Errorf("status %d %q, want 401 invalid token signature", res.status, res.message)
	}
}

// TestOtherSpellingOfCachedToken: once a token is verified and cached,
// its other spellings (spare bits of the last character set) are neither
// served from the cache nor accepted by the parser.
func TestOtherSpellingOfCachedToken(t *testing.T) {
	p := mustBuild(t, hsConfig, newClock(t0).env("cache-spelling"))
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
		t.Fatalf("canonical token: status %d %q", res.status, res.message)
	}
	for _, m := range spellings(t, tok) {
		res := run(t, p, bearer(m))
		if res.status != fasthttp.StatusUnauthorized || res.message != "malformed token" {
			t.Errorf("%s: status %d %q, want 401 malformed token", m, res.status, res.message)
		}
	}
	if n := p.cache.len(); n != 1 {
		t.Errorf("cache holds %d entries, want the canonical token only", n)
	}
}

// TestHandleConcurrent sends many tokens from many goroutines through a
// small cache (so entries are evicted and re-verified concurrently) and
// checks each request gets its own token's identity.
func TestHandleConcurrent(t *testing.T) {
	p := mustBuild(t, hsConfig+"cache_size: 8\n", newClock(t0).env("concurrent"))
	const users = 24
	toks := make([]string, users)
	for i := range toks {
		toks[i] = mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "sub", "user-"+strconv.Itoa(i)), "")
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ctx fasthttp.RequestCtx
			st := reqctx.Acquire(&ctx)
			for n := range 150 {
				i := (g*7 + n) % users
				ctx.Request.Header.Set("Authorization", "Bearer "+toks[i])
				if p.Handle(&ctx) != plugins.Next {
					errs <- "refused: " + string(ctx.Response.Body())
					return
				}
				want := "user-" + strconv.Itoa(i)
				if string(st.Identity.Subject) != want || string(ctx.Request.Header.Peek("X-User-ID")) != want {
					errs <- "got " + string(st.Identity.Subject) + ", want " + want
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// mintHeader signs valid claims with the test secret and one more header
// parameter.
func mintHeader(t testing.TB, name string, value any) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, claims())
	tok.Header[name] = value
	s, err := tok.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
