package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// fakeIdP is an identity provider's key endpoint on loopback: a JWK Set
// whose keys can be published and retired while it runs, served with the
// Cache-Control the test chooses.
type fakeIdP struct {
	*httptest.Server
	mu           sync.Mutex
	kids         []string
	keys         map[string]crypto.PublicKey
	cacheControl string
	hits         atomic.Int64
}

func newFakeIdP(t testing.TB) *fakeIdP {
	t.Helper()
	f := &fakeIdP{keys: map[string]crypto.PublicKey{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.hits.Add(1)
		f.mu.Lock()
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		for _, kid := range f.kids {
			j := jwkOf(t, kid, f.keys[kid])
			j["alg"] = algOf(f.keys[kid])
			doc.Keys = append(doc.Keys, j)
		}
		cc := f.cacheControl
		f.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(f.Close)
	return f
}

func algOf(pub crypto.PublicKey) string {
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		return "ES256"
	}
	return "RS256"
}

// publish adds a key to the set.
func (f *fakeIdP) publish(kid string, pub crypto.PublicKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kids = append(f.kids, kid)
	f.keys[kid] = pub
}

// retire removes a key from the set.
func (f *fakeIdP) retire(kid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kids = slices.DeleteFunc(f.kids, func(k string) bool { return k == kid })
	delete(f.keys, kid)
}

func (f *fakeIdP) setCacheControl(cc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cacheControl = cc
}

// mintShaped signs claims with a JOSE header exactly as given (alg is set
// by the method; kid and typ only when not empty).
func mintShaped(t testing.TB, m jwtlib.SigningMethod, key any, kid, typ string, c jwtlib.MapClaims) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(m, c)
	delete(tok.Header, "typ")
	if typ != "" {
		tok.Header["typ"] = typ
	}
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The issuers of the provider families, as their tokens spell them.
const (
	issAuth0    = "https://tenant.eu.auth0.com/"
	issOkta     = "https://example.okta.com/oauth2/default"
	issKeycloak = "https://sso.example.com/realms/main"
	issEntra    = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
	issGoogle   = "https://accounts.google.com"
	issCognito  = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
	issOwn      = "gatewayd-auth"
	entraAppID  = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
	googleAud   = "1008719970978-hb24n2dstb40o45d4feuo2ukqmcc6381.apps.googleusercontent.com"
)

// idpFixture is one fake IdP per provider family and a plugin accepting
// them all, configured with the entries of docs/identity-providers.md.
type idpFixture struct {
	clk                                    *clock
	auth0, okta, keycloak, entra, google   *fakeIdP
	cognito                                *fakeIdP
	auth0Key, oktaKey, entraKey, googleKey *rsa.PrivateKey
	cognitoKey, keycloakRSA, keycloakNext  *rsa.PrivateKey
	keycloakEC                             *ecdsa.PrivateKey
	p                                      *Plugin
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	idpKeysOnce sync.Once
	idpKeys     [7]*rsa.PrivateKey
	idpEC       *ecdsa.PrivateKey
)

func newIdPFixture(t testing.TB, route string) *idpFixture {
	t.Helper()
	idpKeysOnce.Do(func() {
		for i := range idpKeys {
			idpKeys[i] = rsaKey(t)
		}
		var err error
		if idpEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	})
	f := &idpFixture{
		clk:   newClock(t0),
		auth0: newFakeIdP(t), okta: newFakeIdP(t), keycloak: newFakeIdP(t),
		entra: newFakeIdP(t), google: newFakeIdP(t), cognito: newFakeIdP(t),
		auth0Key: idpKeys[0], oktaKey: idpKeys[1], keycloakRSA: idpKeys[2], entraKey: idpKeys[3],
		googleKey: idpKeys[4], cognitoKey: idpKeys[5], keycloakNext: idpKeys[6], keycloakEC: idpEC,
	}
	f.auth0.publish("auth0-1", &f.auth0Key.PublicKey)
	f.okta.publish("okta-1", &f.oktaKey.PublicKey)
	f.keycloak.publish("kc-rsa", &f.keycloakRSA.PublicKey)
	f.keycloak.publish("kc-ec", &f.keycloakEC.PublicKey)
	f.entra.publish("entra-1", &f.entraKey.PublicKey)
	f.google.publish("google-1", &f.googleKey.PublicKey)
	f.cognito.publish("cognito-1", &f.cognitoKey.PublicKey)
	cfg := `providers:
  - issuer: ` + issAuth0 + `
    jwks_url: ` + f.auth0.URL + `/.well-known/jwks.json
    audience: [https://api.example.com]
    algorithms: [RS256]
    typ: []
    roles_claim: https://example.com/roles
  - issuer: ` + issOkta + `
    jwks_url: ` + f.okta.URL + `/oauth2/default/v1/keys
    audience: api://default
    algorithms: [RS256]
    typ: []
    roles_claim: groups
    scopes_claim: scp
  - issuer: ` + issKeycloak + `
    jwks_url: ` + f.keycloak.URL + `/realms/main/protocol/openid-connect/certs
    jwks_refetch_interval: 2s
    audience: account
    algorithms: [RS256, ES256]
    typ: [Bearer]
    roles_claim: realm_access.roles
  - issuer: ` + issEntra + `
    jwks_url: ` + f.entra.URL + `/discovery/v2.0/keys
    audience: [` + entraAppID + `, api://` + entraAppID + `]
    algorithms: [RS256]
    typ: []
    roles_claim: roles
    scopes_claim: scp
  - issuer: ` + issGoogle + `
    jwks_url: ` + f.google.URL + `/oauth2/v3/certs
    audience: ` + googleAud + `
    algorithms: [RS256]
    typ: []
  - issuer: ` + issCognito + `
    jwks_url: ` + f.cognito.URL + `/.well-known/jwks.json
    algorithms: [RS256]
    typ: [access]
    typ_claim: token_use
    roles_claim: cognito:groups
  - issuer: ` + issOwn + `
    secret: ` + testSecret + `
    audience: api
forward_claims: {sub: X-User-ID, "realm_access.roles": X-User-Roles, "https://example.com/roles": X-Auth0-Roles, email: X-User-Email}
`
	f.p = mustBuild(t, cfg, f.clk.env(route))
	return f
}

func (f *idpFixture) times() (iat, exp int64) { return t0.Unix() - 30, t0.Unix() + 3600 }

// The tokens below copy the claims and JOSE headers each provider family
// puts in its access tokens (ids shortened, values made up).

func (f *idpFixture) auth0Token(t testing.TB, mod ...any) string {
	iat, exp := f.times()
	return mintShaped(t, jwtlib.SigningMethodRS256, f.auth0Key, "auth0-1", "JWT", with(jwtlib.MapClaims{
		"https://example.com/roles": []any{"admin", "billing"},
		"iss":                       issAuth0,
		"sub":                       "auth0|64f1c2a9b3e4d5f6a7b8c9d0",
		"aud":                       []any{"https://api.example.com", "https://tenant.eu.auth0.com/userinfo"},
		"iat":                       iat,
		"exp":                       exp,
		"azp":                       "Xk2Lw9Vb3NqT7RfYp1ZcA8sD4gH6jK0m",
		"scope":                     "openid profile email read:users",
		"permissions":               []any{"read:users"},
	}, mod...))
}

func (f *idpFixture) oktaToken(t testing.TB) string {
	iat, exp := f.times()
	return mintShaped(t, jwtlib.SigningMethodRS256, f.oktaKey, "okta-1", "", jwtlib.MapClaims{
		"ver": 1, "jti": "AT.4bN3y9cN5sQ2lWr0aP7_xYz", "iss": issOkta, "aud": "api://default",
		"iat": iat, "exp": exp, "cid": "0oa1b2c3d4e5f6g7h8i9", "uid": "00u1a2b3c4d5e6f7g8h9",
		"scp": []any{"openid", "email", "orders:read"}, "auth_time": iat, "sub": "ann@example.com",
		"groups": []any{"Everyone", "admin"},
	})
}

func (f *idpFixture) keycloakToken(t testing.TB, m jwtlib.SigningMethod, key any, kid string, mod ...any) string {
	iat, exp := f.times()
	return mintShaped(t, m, key, kid, "JWT", with(jwtlib.MapClaims{
		"exp": exp, "iat": iat, "jti": "onrtac:5f2c8a71-3b1e-4c9a-9d2f-7e6b5a4c3d21", "iss": issKeycloak,
		"aud": "account", "sub": "0d8a7c4e-1f2b-4a6c-9e3d-5b7f1a2c4e6d", "typ": "Bearer", "azp": "web",
		"sid": "8c1f3e5a-7b9d-4f2e-a6c8-1e3b5d7f9a2c", "acr": "1", "allowed-origins": []any{"https://app.example.com"},
		"realm_access":    map[string]any{"roles": []any{"offline_access", "uma_authorization", "admin"}},
		"resource_access": map[string]any{"account": map[string]any{"roles": []any{"manage-account", "view-profile"}}},
		"scope":           "openid email profile", "email_verified": true, "preferred_username": "ann", "email": "ann@example.com",
	}, mod...))
}

func (f *idpFixture) entraToken(t testing.TB) string {
	iat, exp := f.times()
	return mintShaped(t, jwtlib.SigningMethodRS256, f.entraKey, "entra-1", "JWT", jwtlib.MapClaims{
		"aud": entraAppID, "iss": issEntra, "iat": iat, "nbf": iat, "exp": exp,
		"aio": "AWQAm/8TAAAA", "azp": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "azpacr": "0",
		"name": "Ann Example", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "preferred_username": "ann@contoso.com",
		"rh": "0.AAAA", "roles": []any{"Orders.Admin"}, "scp": "access_as_user Orders.Read",
		"sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
	})
}

func (f *idpFixture) googleToken(t testing.TB) string {
	iat, exp := f.times()
	return mintShaped(t, jwtlib.SigningMethodRS256, f.googleKey, "google-1", "JWT", jwtlib.MapClaims{
		"iss": issGoogle, "azp": googleAud, "aud": googleAud, "sub": "110169484474386276334",
		"email": "ann@example.com", "email_verified": true, "hd": "example.com", "iat": iat, "exp": exp,
	})
}

func (f *idpFixture) cognitoToken(t testing.TB, use string) string {
	iat, exp := f.times()
	return mintShaped(t, jwtlib.SigningMethodRS256, f.cognitoKey, "cognito-1", "", jwtlib.MapClaims{
		"sub": "aaaaaaaa-bbbb-cccc-dddd-example", "cognito:groups": []any{"admin"}, "iss": issCognito,
		"version": 2, "client_id": "1example23456789", "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"event_id": "bbbbbbbb-cccc-dddd-eeee-ffffffffffff", "token_use": use,
		"scope": "aws.cognito.signin.user.admin orders/read", "auth_time": iat, "exp": exp, "iat": iat,
		"jti": "cccccccc-dddd-eeee-ffff-aaaaaaaaaaaa", "username": "ann",
	})
}

func (f *idpFixture) ownToken(t testing.TB) string {
	return mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
}

// TestProvidersAcceptRealTokens sends one access token of each provider
// family, shaped as the provider shapes it, through one plugin with all the
// providers, twice (verified, then from the cache), and checks the
// identity record it produced.
func TestProvidersAcceptRealTokens(t *testing.T) {
	f := newIdPFixture(t, "idp-accept")
	tests := []struct {
		name       string
		giveTok    string
		wantSub    string
		wantRoles  []string
		wantScopes []string
		wantHeader map[string]string
	}{
		{
			name: "auth0 namespaced roles", giveTok: f.auth0Token(t), wantSub: "auth0|64f1c2a9b3e4d5f6a7b8c9d0",
			wantRoles: []string{"admin", "billing"}, wantScopes: []string{"openid", "profile", "email", "read:users"},
			wantHeader: map[string]string{"X-Auth0-Roles": "admin,billing", "X-User-Roles": ""},
		},
		{
			name: "auth0 RFC 9068 header", giveTok: mintShaped(t, jwtlib.SigningMethodRS256, f.auth0Key, "auth0-1", "at+jwt",
				jwtlib.MapClaims{"iss": issAuth0, "sub": "auth0|x", "aud": "https://api.example.com", "exp": t0.Unix() + 60, "client_id": "abc", "iat": t0.Unix(), "jti": "j"}),
			wantSub: "auth0|x",
		},
		{
			name: "okta groups and scp list", giveTok: f.oktaToken(t), wantSub: "ann@example.com",
			wantRoles: []string{"Everyone", "admin"}, wantScopes: []string{"openid", "email", "orders:read"},
		},
		{
			name: "keycloak RS256 realm roles", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa"),
			wantSub: "0d8a7c4e-1f2b-4a6c-9e3d-5b7f1a2c4e6d", wantRoles: []string{"offline_access", "uma_authorization", "admin"},
			wantScopes: []string{"openid", "email", "profile"},
			wantHeader: map[string]string{"X-User-Roles": "offline_access,uma_authorization,admin", "X-User-Email": "ann@example.com"},
		},
		{
			name: "keycloak ES256", giveTok: f.keycloakToken(t, jwtlib.SigningMethodES256, f.keycloakEC, "kc-ec"),
			wantSub: "0d8a7c4e-1f2b-4a6c-9e3d-5b7f1a2c4e6d", wantRoles: []string{"offline_access", "uma_authorization", "admin"},
			wantScopes: []string{"openid", "email", "profile"},
		},
		{
			name: "entra app roles and space-separated scp", giveTok: f.entraToken(t), wantSub: "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
			wantRoles: []string{"Orders.Admin"}, wantScopes: []string{"access_as_user", "Orders.Read"},
		},
		{name: "google", giveTok: f.googleToken(t), wantSub: "110169484474386276334"},
		{
			name: "cognito groups", giveTok: f.cognitoToken(t, "access"), wantSub: "aaaaaaaa-bbbb-cccc-dddd-example",
			wantRoles: []string{"admin"}, wantScopes: []string{"aws.cognito.signin.user.admin", "orders/read"},
		},
		{
			name: "our auth service", giveTok: f.ownToken(t), wantSub: "user-1",
			wantRoles: []string{"admin"}, wantScopes: []string{"users:read", "users:write"},
			wantHeader: map[string]string{"X-User-ID": "user-1", "X-User-Roles": ""},
		},
	}
	for _, tt := range tests {
		for _, pass := range []string{"verified", "cached"} {
			t.Run(tt.name+"/"+pass, func(t *testing.T) {
				res := run(t, f.p, func(r *fasthttp.Request) {
					r.Header.Set("Authorization", "Bearer "+tt.giveTok)
					r.Header.Set("X-User-Roles", "spoofed")
				})
				if res.verdict != plugins.Next {
					t.Fatalf("status %d %q, want accepted", res.status, res.message)
				}
				id := &res.st.Identity
				if string(id.Subject) != tt.wantSub {
					t.Errorf("subject %q, want %q", id.Subject, tt.wantSub)
				}
				if !slices.Equal(id.Roles, tt.wantRoles) {
					t.Errorf("roles %q, want %q", id.Roles, tt.wantRoles)
				}
				if !slices.Equal(id.Scopes, tt.wantScopes) {
					t.Errorf("scopes %q, want %q", id.Scopes, tt.wantScopes)
				}
				if got := string(res.ctx.Request.Header.Peek("X-User-ID")); got != tt.wantSub {
					t.Errorf("X-User-ID %q, want %q", got, tt.wantSub)
				}
				for h, want := range tt.wantHeader {
					if got := string(res.ctx.Request.Header.Peek(h)); got != want {
						t.Errorf("%s %q, want %q", h, got, want)
					}
				}
			})
		}
	}
}

// TestProvidersRefuse checks that no provider's key can vouch for another
// provider's tokens, and that audience, issuer and type are per provider.
func TestProvidersRefuse(t *testing.T) {
	f := newIdPFixture(t, "idp-refuse")
	k := getKeys(t)
	rsaPEM := func(pub *rsa.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	kcClaims := func(mod ...any) jwtlib.MapClaims {
		iat, exp := f.times()
		return with(jwtlib.MapClaims{"iss": issKeycloak, "aud": "account", "sub": "s", "typ": "Bearer", "iat": iat, "exp": exp}, mod...)
	}
	tests := []struct {
		name       string
		giveTok    string
		wantMsg    string
		wantReason string
	}{
		{
			name: "wrong audience", giveTok: f.auth0Token(t, "aud", "https://other.example.com"),
			wantMsg: "invalid token audience", wantReason: metrics.ReasonAudience,
		},
		{
			name: "audience of another provider", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa", "aud", "api"),
			wantMsg: "invalid token audience", wantReason: metrics.ReasonAudience,
		},
		{
			name: "no audience where one is required", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa", "aud", nil),
			wantMsg: "invalid token audience", wantReason: metrics.ReasonAudience,
		},
		{
			name: "unknown issuer", giveTok: f.auth0Token(t, "iss", "https://evil.example.com/"),
			wantMsg: "invalid token issuer", wantReason: metrics.ReasonIssuer,
		},
		{
			name: "issuer spelled without its trailing slash", giveTok: f.auth0Token(t, "iss", strings.TrimSuffix(issAuth0, "/")),
			wantMsg: "invalid token issuer", wantReason: metrics.ReasonIssuer,
		},
		{
			name: "no issuer", giveTok: f.auth0Token(t, "iss", nil),
			wantMsg: "invalid token issuer", wantReason: metrics.ReasonIssuer,
		},
		{
			name:    "signed with auth0's key and kid, iss of keycloak",
			giveTok: mintShaped(t, jwtlib.SigningMethodRS256, f.auth0Key, "auth0-1", "JWT", kcClaims()),
			wantMsg: "invalid token signature", wantReason: metrics.ReasonSignature,
		},
		{
			name:    "signed with auth0's key under keycloak's kid",
			giveTok: mintShaped(t, jwtlib.SigningMethodRS256, f.auth0Key, "kc-rsa", "JWT", kcClaims()),
			wantMsg: "invalid token signature", wantReason: metrics.ReasonSignature,
		},
		{
			name:    "signed with auth0's key without kid, iss of keycloak",
			giveTok: mintShaped(t, jwtlib.SigningMethodRS256, f.auth0Key, "", "JWT", kcClaims()),
			wantMsg: "invalid token signature", wantReason: metrics.ReasonSignature,
		},
		{
			name:    "HS256 with our secret, iss of keycloak (RS256)",
			giveTok: mintShaped(t, jwtlib.SigningMethodHS256, []byte(testSecret), "", "JWT", kcClaims()),
			wantMsg: "token algorithm not allowed", wantReason: metrics.ReasonAlgorithm,
		},
		{
			name:    "HS256 keyed with keycloak's public key (key confusion)",
			giveTok: mintShaped(t, jwtlib.SigningMethodHS256, rsaPEM(&f.keycloakRSA.PublicKey), "kc-rsa", "JWT", kcClaims()),
			wantMsg: "token algorithm not allowed", wantReason: metrics.ReasonAlgorithm,
		},
		{
			name:    "RS256 token naming our HS256 service",
			giveTok: mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "kc-rsa"),
			wantMsg: "token algorithm not allowed", wantReason: metrics.ReasonAlgorithm,
		},
		{
			name:    "ES256 for a provider that lists only RS256",
			giveTok: mintShaped(t, jwtlib.SigningMethodES256, f.keycloakEC, "kc-ec", "JWT", with(f.auth0Claims(), "aud", "https://api.example.com")),
			wantMsg: "token algorithm not allowed", wantReason: metrics.ReasonAlgorithm,
		},
		{
			name: "keycloak refresh token", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa", "typ", "Refresh"),
			wantMsg: "not an access token", wantReason: metrics.ReasonType,
		},
		{
			name: "keycloak ID token", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa", "typ", "ID"),
			wantMsg: "not an access token", wantReason: metrics.ReasonType,
		},
		{
			name: "cognito ID token", giveTok: f.cognitoToken(t, "id"),
			wantMsg: "not an access token", wantReason: metrics.ReasonType,
		},
		{
			name:    "our refresh token",
			giveTok: mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "typ", "refresh"), ""),
			wantMsg: "not an access token", wantReason: metrics.ReasonType,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := rejected("idp-refuse", tt.wantReason)
			res := run(t, f.p, bearer(tt.giveTok))
			if res.status != fasthttp.StatusUnauthorized || res.message != tt.wantMsg {
				t.Fatalf("status %d %q, want 401 %q", res.status, res.message, tt.wantMsg)
			}
			if res.www != wantInvalid(tt.wantMsg) {
				t.Errorf("WWW-Authenticate %q", res.www)
			}
			if got := rejected("idp-refuse", tt.wantReason); got != before+1 {
				t.Errorf("gateway_auth_rejected_total{reason=%s} went %d -> %d, want +1", tt.wantReason, before, got)
			}
		})
	}
}

func (f *idpFixture) auth0Claims() jwtlib.MapClaims {
	iat, exp := f.times()
	return jwtlib.MapClaims{"iss": issAuth0, "sub": "auth0|x", "iat": iat, "exp": exp}
}

// TestProviderKeyRotation rotates Keycloak's key: a token under a new kid
// is refused while the IdP does not publish it (the refetch it triggers
// finds nothing), and accepted once the IdP publishes it and the refetch
// interval has passed; the other providers' keys are untouched.
func TestProviderKeyRotation(t *testing.T) {
	f := newIdPFixture(t, "idp-rotate")
	next := f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakNext, "kc-next")
	// Past the refetch interval (2s) of the fetch made at build time.
	f.clk.advance(3 * time.Second)
	hits := f.keycloak.hits.Load()
	if res := run(t, f.p, bearer(next)); res.message != "invalid token signature" {
		t.Fatalf("unpublished kid: status %d %q, want 401 invalid token signature", res.status, res.message)
	}
	if got := f.keycloak.hits.Load(); got != hits+1 {
		t.Fatalf("unknown kid made %d fetches, want 1", got-hits)
	}
	f.keycloak.publish("kc-next", &f.keycloakNext.PublicKey)
	// Within the refetch interval: no new fetch, still refused.
	f.clk.advance(time.Second)
	if res := run(t, f.p, bearer(next)); res.verdict != plugins.Done {
		t.Fatal("accepted before the refetch interval passed")
	}
	if got := f.keycloak.hits.Load(); got != hits+1 {
		t.Fatalf("refetched within the interval (%d fetches)", got-hits)
	}
	f.clk.advance(2 * time.Second)
	if res := run(t, f.p, bearer(next)); res.verdict != plugins.Next {
		t.Fatalf("published kid: status %d %q, want accepted", res.status, res.message)
	}
	// The old key is retired: its tokens verify again against the new
	// set (the cache entry's generation is stale) and are refused.
	old := f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa")
	if res := run(t, f.p, bearer(old)); res.verdict != plugins.Next {
		t.Fatalf("old kid before retirement: %d %q", res.status, res.message)
	}
	f.keycloak.retire("kc-rsa")
	f.clk.advance(3 * time.Second)
	if err := f.p.providerByIssuer(issKeycloak).remote.fetch(); err != nil {
		t.Fatal(err)
	}
	if res := run(t, f.p, bearer(old)); res.message != "invalid token signature" {
		t.Fatalf("retired kid: status %d %q, want 401 invalid token signature", res.status, res.message)
	}
	if res := run(t, f.p, bearer(f.auth0Token(t))); res.verdict != plugins.Next {
		t.Fatalf("another provider's token after the rotation: %d %q", res.status, res.message)
	}
}

func (p *Plugin) providerByIssuer(iss string) *provider { return p.byIssuer[iss] }

// TestJWKSCacheControl checks that a response's max-age brings the next
// refresh forward (bounded by jwks_refetch_interval and jwks_refresh), with
// the real refresh loop against the fake IdP.
func TestJWKSCacheControl(t *testing.T) {
	tests := []struct {
		give string
		want time.Duration
	}{
		{"", time.Hour},
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=0", 10 * time.Second},
		{"no-store", 10 * time.Second},
		{"no-cache, max-age=3600", 10 * time.Second},
		{"max-age=86400", time.Hour},
		{`max-age="60", must-revalidate`, time.Minute},
		{"max-age=-5", time.Hour},
		{"max-age=abc", time.Hour},
	}
	r := &remoteKeys{remoteOptions: remoteOptions{refresh: time.Hour, refetch: 10 * time.Second}}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := r.interval(tt.give); got != tt.want {
				t.Errorf("interval(%q) = %s, want %s", tt.give, got, tt.want)
			}
		})
	}

	t.Run("loop follows max-age", func(t *testing.T) {
		idp := newFakeIdP(t)
		k := getKeys(t)
		idp.publish("a", &k.rsa.PublicKey)
		idp.setCacheControl("max-age=1")
		rk := newRemoteKeys(remoteOptions{url: idp.URL, refresh: time.Hour, refetch: time.Second, provider: "cache-control"}, testLogger(), time.Now)
		defer rk.Close()
		idp.publish("b", &k.rsa2.PublicKey)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if ks, _ := rk.keys(); ks != nil && ks.byKid["b"] != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("max-age=1 with jwks_refresh 1h: the new key was never fetched")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := metrics.JWKSKeys("cache-control").Get(); got != 2 {
			t.Errorf("gateway_jwks_keys = %v, want 2", got)
		}
	})
}

// TestJWKSUnreachableProvider checks that a provider whose key set cannot
// be fetched is not silent: a configuration warning (what -check prints), a
// zero gauge and an error count, while the other providers work.
func TestJWKSUnreachableProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://user:pw@" + ln.Addr().String() + "/certs?token=s3cret"
	_ = ln.Close()
	const issuer = "https://down.example.com/"
	before := metrics.JWKSRefreshErrors(issuer).Get()
	var warnings []*config.Warning
	env := newClock(t0).env("idp-down")
	env.Warn = func(w *config.Warning) { warnings = append(warnings, w) }
	p := mustBuild(t, `providers:
  - issuer: `+issuer+`
    jwks_url: `+dead+`
    algorithms: [RS256]
  - issuer: gatewayd-auth
    secret: `+testSecret+`
    audience: api
`, env)
	if len(warnings) != 1 {
		t.Fatalf("warnings %v, want one", warnings)
	}
	w := warnings[0].String()
	for _, want := range []string{"routes[0].plugins[1].jwt.providers[0].jwks_url", `could not fetch the key set of provider "https://down.example.com/"`, "refused until a fetch succeeds"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}
	for _, secret := range []string{"s3cret", ":pw@"} {
		if strings.Contains(w, secret) {
			t.Errorf("warning %q shows the URL's credentials", w)
		}
	}
	if got := metrics.JWKSKeys(issuer).Get(); got != 0 {
		t.Errorf("gateway_jwks_keys = %v, want 0", got)
	}
	if got := metrics.JWKSRefreshErrors(issuer).Get(); got != before+1 {
		t.Errorf("gateway_jwks_refresh_errors_total went %d -> %d, want +1", before, got)
	}
	if res := run(t, p, bearer(mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), ""))); res.verdict != plugins.Next {
		t.Fatalf("the reachable provider's token: %d %q", res.status, res.message)
	}
}

// TestTypes checks typ against the claim and the JOSE header.
func TestTypes(t *testing.T) {
	tests := []struct {
		name      string
		giveTyp   string
		giveHdr   string
		giveClaim any
		wantOK    bool
	}{
		{name: "default: typ claim access", giveTyp: "", giveClaim: "access", wantOK: true},
		{name: "default: refresh refused", giveTyp: "", giveClaim: "refresh"},
		{name: "default: no typ refused", giveTyp: ""},
		{name: "default: header JWT refused", giveTyp: "", giveHdr: "JWT"},
		{name: "at+jwt header", giveTyp: "typ: [at+jwt]\n", giveHdr: "at+jwt", wantOK: true},
		{name: "application/at+jwt header", giveTyp: "typ: [at+jwt]\n", giveHdr: "application/at+jwt", wantOK: true},
		{name: "AT+JWT header", giveTyp: "typ: [at+jwt]\n", giveHdr: "AT+JWT", wantOK: true},
		{name: "at+jwt not listed", giveTyp: "typ: [access]\n", giveHdr: "at+jwt"},
		{name: "either matches", giveTyp: "typ: [access, at+jwt]\n", giveHdr: "at+jwt", giveClaim: "Bearer", wantOK: true},
		{name: "Bearer claim", giveTyp: "typ: [Bearer]\n", giveHdr: "JWT", giveClaim: "Bearer", wantOK: true},
		{name: "not checked", giveTyp: "typ: []\n", giveClaim: "refresh", wantOK: true},
		{name: "empty typ: keeps the default", giveTyp: "typ:\n", giveClaim: "refresh"},
		{name: "non-string claim", giveTyp: "typ: [access]\n", giveClaim: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, "secret: "+testSecret+"\n"+tt.giveTyp, newClock(t0).env("idp-typ"))
			c := with(claims(), "typ", tt.giveClaim)
			tok := mintShaped(t, jwtlib.SigningMethodHS256, []byte(testSecret), "", tt.giveHdr, c)
			res := run(t, p, bearer(tok))
			if tt.wantOK && res.verdict != plugins.Next {
				t.Fatalf("status %d %q, want accepted", res.status, res.message)
			}
			if !tt.wantOK && res.message != "not an access token" {
				t.Fatalf("status %d %q, want 401 not an access token", res.status, res.message)
			}
		})
	}
}

// TestClaimNames checks the claim-name rules and the normalisation of
// roles and scopes values.
func TestClaimNames(t *testing.T) {
	c := map[string]any{
		"role":                      "admin",
		"roles":                     "admin  ops admin",
		"https://example.com/roles": []any{"a", "b", "a", 7.0, ""},
		"realm_access":              map[string]any{"roles": []any{"x", "y"}},
		"resource_access":           map[string]any{"api": map[string]any{"roles": []any{"writer"}}},
		"a.b":                       "whole name wins",
		"a":                         map[string]any{"b": "path"},
		"num":                       42.0,
		"obj":                       map[string]any{"k": "v"},
	}
	tests := []struct {
		give       string
		wantSet    []string
		wantHeader string
	}{
		{give: "role", wantSet: []string{"admin"}, wantHeader: "admin"},
		{give: "roles", wantSet: []string{"admin", "ops"}, wantHeader: "admin  ops admin"},
		{give: "https://example.com/roles", wantSet: []string{"a", "b"}, wantHeader: "a,b,a,7,"},
		{give: "realm_access.roles", wantSet: []string{"x", "y"}, wantHeader: "x,y"},
		{give: "resource_access.api.roles", wantSet: []string{"writer"}, wantHeader: "writer"},
		{give: "a.b", wantSet: []string{"whole", "name", "wins"}, wantHeader: "whole name wins"},
		{give: "num", wantHeader: "42"},
		{give: "obj"},
		{give: "realm_access.missing"},
		{give: "role.deeper"},
		{give: "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			v, _ := newClaimPath(tt.give).lookup(c)
			if got := appendValueSet(nil, v); !slices.Equal(got, tt.wantSet) {
				t.Errorf("set %q, want %q", got, tt.wantSet)
			}
			if got, _ := appendHeaderValue(nil, v); string(got) != tt.wantHeader {
				t.Errorf("header %q, want %q", got, tt.wantHeader)
			}
		})
	}
}

// TestProvidersWithRBAC runs jwt then rbac: roles from a list claim, a
// space-separated claim and a namespaced claim, scopes from scope and scp.
func TestProvidersWithRBAC(t *testing.T) {
	f := newIdPFixture(t, "idp-rbac")
	spaceRoles := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "role", "viewer admin"), "")
	tests := []struct {
		name       string
		giveRBAC   string
		giveTok    string
		wantStatus int
	}{
		{name: "list claim (keycloak realm roles)", giveRBAC: "roles: [admin]", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa")},
		{name: "list claim without the role", giveRBAC: "roles: [auditor]", giveTok: f.keycloakToken(t, jwtlib.SigningMethodRS256, f.keycloakRSA, "kc-rsa"), wantStatus: 403},
		{name: "space-separated claim", giveRBAC: "roles: [admin]", giveTok: spaceRoles},
		{name: "space-separated claim, other role", giveRBAC: "roles: [viewer]", giveTok: spaceRoles},
		{name: "space-separated claim is not a substring match", giveRBAC: "roles: [adm]", giveTok: spaceRoles, wantStatus: 403},
		{name: "namespaced claim (auth0)", giveRBAC: "roles: [billing]", giveTok: f.auth0Token(t)},
		{name: "namespaced claim without the role", giveRBAC: "roles: [ops]", giveTok: f.auth0Token(t), wantStatus: 403},
		{name: "scope string (auth0)", giveRBAC: "scopes: [read:users, openid]", giveTok: f.auth0Token(t)},
		{name: "scope string missing one", giveRBAC: "scopes: [read:users, write:users]", giveTok: f.auth0Token(t), wantStatus: 403},
		{name: "scp list (okta)", giveRBAC: "scopes: [orders:read]", giveTok: f.oktaToken(t)},
		{name: "scp string (entra)", giveRBAC: "roles: [Orders.Admin]\nscopes: [Orders.Read]", giveTok: f.entraToken(t)},
		{name: "scp fallback with the default scopes_claim", giveRBAC: "scopes: [orders:write]",
			giveTok: mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), "scope", nil, "scp", []any{"orders:write"}), "")},
		{name: "roles and scopes (cognito groups)", giveRBAC: "roles: [admin]\nscopes: [orders/read]", giveTok: f.cognitoToken(t, "access")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := rbac.Factory{}.Build(plugintest.Section(t, "routes[0].plugins[2].rbac", tt.giveRBAC), &plugins.Env{Route: "idp-rbac"})
			if err != nil {
				t.Fatal(err)
			}
			defer pl.Close()
			ctx := new(fasthttp.RequestCtx)
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.Header.Set("Authorization", "Bearer "+tt.giveTok)
			reqctx.Acquire(ctx)
			if v := f.p.Handle(ctx); v != plugins.Next {
				t.Fatalf("jwt refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			v := pl.Handle(ctx)
			switch {
			case tt.wantStatus == 0 && v != plugins.Next:
				t.Fatalf("rbac refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			case tt.wantStatus != 0 && ctx.Response.StatusCode() != tt.wantStatus:
				t.Fatalf("status %d, want %d", ctx.Response.StatusCode(), tt.wantStatus)
			}
		})
	}
}

// TestProvidersConfigErrors checks the mistakes the providers form adds.
func TestProvidersConfigErrors(t *testing.T) {
	const p = "gateway.yaml:%d: routes[0].plugins[1].jwt.%s"
	own := "    secret: " + testSecret + "\n"
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{
			name:     "both forms",
			giveYAML: "issuer: a\nsecret: " + testSecret + "\nproviders:\n  - issuer: b\n" + own,
			wantErrs: []string{
				"gateway.yaml:1: routes[0].plugins[1].jwt.issuer: issuer belongs in each entry of providers: write the single-provider form or providers, not both",
				"gateway.yaml:2: routes[0].plugins[1].jwt.secret: secret belongs in each entry of providers: write the single-provider form or providers, not both",
			},
		},
		{
			name:     "duplicate issuer",
			giveYAML: "providers:\n  - issuer: a\n" + own + "  - issuer: a\n" + own,
			wantErrs: []string{`gateway.yaml:4: routes[0].plugins[1].jwt.providers[1].issuer: issuer "a" is already providers[0]: each issuer selects one provider`},
		},
		{
			name:     "missing issuer",
			giveYAML: "providers:\n  - secret: " + testSecret + "\n",
			wantErrs: []string{"gateway.yaml:2: routes[0].plugins[1].jwt.providers[0].issuer: every provider needs an issuer: the token's iss selects the provider"},
		},
		{
			name:     "empty list",
			giveYAML: "providers: []\n",
			wantErrs: []string{"gateway.yaml:1: routes[0].plugins[1].jwt.providers: list at least one provider (issuer and key source), or remove providers and use the single-provider form"},
		},
		{
			name:     "errors inside an entry name it",
			giveYAML: "providers:\n  - issuer: a\n" + own + "  - issuer: b\n    jwks_url: https://b.example.com/certs\n    audience: []\n    typ: [\"\"]\n",
			wantErrs: []string{
				"gateway.yaml:5: routes[0].plugins[1].jwt.providers[1].jwks_url: algorithms defaults to [HS256], which needs secret: list the public-key algorithms the issuer uses (e.g. algorithms: [RS256])",
				"gateway.yaml:6: routes[0].plugins[1].jwt.providers[1].audience: list at least one audience (leave audience out to not check it)",
				"gateway.yaml:7: routes[0].plugins[1].jwt.providers[1].typ[0]: must not be empty (typ: [] turns the check off)",
			},
		},
		{
			name:     "unknown key in an entry",
			giveYAML: "providers:\n  - issuer: a\n" + own + "    role_claim: roles\n",
			wantErrs: []string{`gateway.yaml:4: routes[0].plugins[1].jwt.providers[0].role_claim: unknown field "role_claim" (did you mean "roles_claim"?)`},
		},
		{
			name:     "weak secret in an entry",
			giveYAML: "providers:\n  - issuer: a\n    secret: short\n",
			wantErrs: []string{"gateway.yaml:3: routes[0].plugins[1].jwt.providers[0].secret: must be at least 32 bytes for HS256, got 5"},
		},
	}
	_ = p
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.giveYAML), nil)
			if err == nil {
				t.Fatal("Build accepted it")
			}
			got := config.Errors(err)
			if len(got) != len(tt.wantErrs) {
				t.Fatalf("errors:\n%v\nwant %d:\n%s", err, len(tt.wantErrs), strings.Join(tt.wantErrs, "\n"))
			}
			for i, e := range got {
				if !strings.HasPrefix(e.Error(), tt.wantErrs[i]) {
					t.Errorf("error %d:\n got %s\nwant %s", i, e, tt.wantErrs[i])
				}
			}
		})
	}
}
