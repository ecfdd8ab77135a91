package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	jwtlib "github.com/golang-jwt/jwt/v5"
)

// idpServer is an identity provider's JWKS endpoint on loopback whose keys
// the test publishes while the gateway runs.
type idpServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []map[string]string
}

func newIdPServer(t *testing.T) *idpServer {
	t.Helper()
	s := &idpServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		doc, _ := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *idpServer) publish(kid string, pub *rsa.PublicKey) {
	enc := base64.RawURLEncoding.EncodeToString
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, map[string]string{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": enc(pub.N.Bytes()), "e": enc(big.NewInt(int64(pub.E)).Bytes()),
	})
}

const idpIssuer = "https://sso.example.com/realms/main"

const idpConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: true }
upstreams:
  echo: { targets: ["http://%s"] }
plugins:
  idp-jwt:
    type: jwt
    providers:
      - issuer: ` + idpIssuer + `
        jwks_url: %s/realms/main/protocol/openid-connect/certs
        jwks_refetch_interval: 1s
        audience: account
        algorithms: [RS256]
        typ: [Bearer]
        roles_claim: realm_access.roles
      - issuer: gatewayd-auth
        secret: ${JWT_SECRET}
        audience: api
    forward_claims: { sub: X-User-ID, "realm_access.roles": X-User-Roles }
routes:
  - name: admin
    match: { path_prefix: /v1/admin/ }
    upstream: echo
    plugins: [idp-jwt, { rbac: { roles: [admin] } }]
`

func keycloakToken(t *testing.T, key *rsa.PrivateKey, kid string) string {
	t.Helper()
	now := time.Now()
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodRS256, jwtlib.MapClaims{
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "jti": "j-" + kid,
		"iss": idpIssuer, "aud": "account", "sub": "kc-user", "typ": "Bearer", "azp": "web",
		"realm_access": map[string]any{"roles": []any{"offline_access", "admin"}},
		"scope":        "openid email profile",
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestIdPKeyRotation runs the real binary against a fake IdP and rotates
// its signing key: a token under the new kid is refused for as long as the
// IdP does not publish the key, and accepted within the refetch interval
// once it does; the old key keeps working meanwhile, and the HS256 provider
// next to it is unaffected.
func TestIdPKeyRotation(t *testing.T) {
	idp := newIdPServer(t)
	oldKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	newKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.publish("k1", &oldKey.PublicKey)
	echoAddr := startEcho(t, "echo")
	gw := gatewaytest.Start(t, fmt.Sprintf(idpConfig, echoAddr, idp.URL), gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	get := func(tok string) response {
		return do(t, "GET", gw.URL("/v1/admin/x"), map[string]string{"Authorization": "Bearer " + tok, "X-User-Roles": "spoofed"}, "")
	}

	r := get(keycloakToken(t, oldKey, "k1"))
	if r.Status != 200 {
		t.Fatalf("current key: %d %s", r.Status, r.Body)
	}
	if got := header(decodeEcho(t, r), "X-User-Roles"); got != "offline_access,admin" {
		t.Errorf("X-User-Roles %q, want offline_access,admin", got)
	}

	next := keycloakToken(t, newKey, "k2")
	// Not published: refused on every try, across several refetch
	// intervals (each try past the interval makes the gateway refetch).
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if r := get(next); r.Status != 401 || decodeError(t, r).Message != "invalid token signature" {
			t.Fatalf("unpublished kid: %d %s, want 401 invalid token signature", r.Status, r.Body)
		}
	}
	idp.publish("k2", &newKey.PublicKey)
	published := time.Now()
	for {
		r := get(next)
		if r.Status == 200 {
			t.Logf("new kid accepted %v after the IdP published it (refetch interval 1s)", time.Since(published).Round(time.Millisecond))
			break
		}
		if time.Since(published) > 10*time.Second {
			t.Fatalf("new kid still refused 10s after publication: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := get(keycloakToken(t, oldKey, "k1")); r.Status != 200 {
		t.Errorf("old key after the rotation: %d %s", r.Status, r.Body)
	}

	own := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{
		"iss": "gatewayd-auth", "aud": "api", "sub": "u1", "typ": "access", "role": "admin",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
	})
	ownTok, err := own.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if r := get(ownTok); r.Status != 200 {
		t.Errorf("auth-service token: %d %s", r.Status, r.Body)
	}
	// The same secret, but naming the RS256 provider: refused.
	confused := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{
		"iss": idpIssuer, "aud": "account", "sub": "u1", "typ": "Bearer",
		"realm_access": map[string]any{"roles": []any{"admin"}},
		"iat":          time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
	})
	confusedTok, err := confused.SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if r := get(confusedTok); r.Status != 401 {
		t.Errorf("HS256 token naming the RS256 provider: %d %s, want 401", r.Status, r.Body)
	}

	m := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	if want := `gateway_jwks_keys{provider="` + idpIssuer + `"} 2`; !strings.Contains(string(m.Body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestIdPUnreachable checks that a provider whose key set cannot be
// fetched is not silent: -check warns (and still says OK), the gateway
// starts ready, logs a warning and shows gateway_jwks_keys 0, and the
// other provider's tokens work.
func TestIdPUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/?access_token=s3cret"
	_ = ln.Close()
	cfg := fmt.Sprintf(idpConfig, startEcho(t, "echo"), strings.TrimSuffix(dead, "/?access_token=s3cret"))
	cfg = strings.Replace(cfg, "/realms/main/protocol/openid-connect/certs", "/certs?access_token=s3cret", 1)

	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(file, []byte(gatewaytest.Render(cfg, "127.0.0.1:1", "127.0.0.1:2", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := gatewaytest.RunCheck(t, file, "JWT_SECRET="+testSecret)
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Fatalf("-check exited %d:\n%s", code, out)
	}
	if !strings.Contains(out, "plugins.idp-jwt.providers[0].jwks_url: warning:") || !strings.Contains(out, "could not fetch the key set of provider") {
		t.Errorf("-check does not warn about the unreachable key set:\n%s", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("-check prints the URL's query:\n%s", out)
	}

	gw := gatewaytest.Start(t, cfg, gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	if !gw.WaitLog("jwt: initial JWKS fetch failed", 5*time.Second) {
		t.Error("no log line about the failed fetch")
	}
	m := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	if want := `gateway_jwks_keys{provider="` + idpIssuer + `"} 0`; !strings.Contains(string(m.Body), want) {
		t.Errorf("/metrics lacks %s", want)
	}
	if strings.Contains(gw.Logs(), "s3cret") {
		t.Error("the logs show the JWKS URL's query")
	}
}
