package jwt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSecret is a 32-byte HS256 secret.
const testSecret = "PpOgJUqpwigVKdGcXn3UgYHUa20HITje"

// testSecret512 is a 64-byte secret, long enough for HS512.
const testSecret512 = testSecret + "rHVwmK4zV2I651epvN2lZBvStnFW4AZu"

// t0 is the fixed "now" of the behaviour tests.
var t0 = time.Unix(1_700_000_000, 0)

// testKeys are generated once per test binary.
type testKeys struct {
	rsa     *rsa.PrivateKey
	rsa2    *rsa.PrivateKey
	ec256   *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
	rsaWeak *rsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) *testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		var e error
		keys.rsa, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		keys.rsa2, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		keys.rsaWeak, e = rsa.GenerateKey(rand.Reader, 1024)
		must(e)
		keys.ec256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		keys.ec384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		_, keys.ed, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		if err != nil {
			panic(err)
		}
	})
	return &keys
}

// writePEM writes pub as a PKIX PEM file in dir and returns its path.
func writePEM(t testing.TB, dir, name string, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// claims returns valid access-token claims at t0.
func claims() jwtlib.MapClaims {
	return jwtlib.MapClaims{
		"sub":   "user-1",
		"email": "ann@example.com",
		"role":  "admin",
		"scope": "users:read users:write",
		"jti":   "jti-1",
		"typ":   "access",
		"iss":   "gatewayd-auth",
		"aud":   "api",
		"iat":   float64(t0.Unix()) - 10.25,
		"exp":   t0.Unix() + 600,
	}
}

// with returns c with the given keys changed (a nil value deletes it).
func with(c jwtlib.MapClaims, kv ...any) jwtlib.MapClaims {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

// mint signs c; kid is set when not empty.
func mint(t testing.TB, m jwtlib.SigningMethod, key any, c jwtlib.MapClaims, kid string) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// section parses a YAML snippet as a plugin section.
func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, "routes[0].plugins[1].jwt", src)
}

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.ns.Store(at.UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) env(route string) *plugins.Env {
	return &plugins.Env{Route: route, Now: c.now, Resources: plugins.NewResources()}
}

// mustBuild builds a plugin from src and registers its Close.
func mustBuild(t testing.TB, src string, env *plugins.Env) *Plugin {
	t.Helper()
	pl, err := Factory{}.Build(section(t, src), env)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() {
		if err := pl.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return pl.(*Plugin)
}

// result is what one request through Handle produced.
type result struct {
	verdict plugins.Verdict
	status  int
	www     string
	code    string
	message string
	st      *reqctx.State
	ctx     *fasthttp.RequestCtx
}

// run sends one request through p; prep sets it up.
func run(t testing.TB, p *Plugin, prep func(r *fasthttp.Request)) result {
	t.Helper()
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.SetRequestURI("/v1/users/me")
	st := reqctx.Acquire(ctx)
	st.RequestID = append(st.RequestID[:0], "req-1"...)
	if prep != nil {
		prep(&ctx.Request)
	}
	res := result{verdict: p.Handle(ctx), st: st, ctx: ctx}
	res.status = ctx.Response.StatusCode()
	res.www = string(ctx.Response.Header.Peek("WWW-Authenticate"))
	if res.verdict == plugins.Done {
		var body struct {
			Error, Message string
			RequestID      string `json:"request_id"`
		}
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
			t.Fatalf("error body %q: %v", ctx.Response.Body(), err)
		}
		if body.RequestID != "req-1" {
			t.Errorf("request_id = %q, want req-1", body.RequestID)
		}
		res.code, res.message = body.Error, body.Message
	}
	return res
}

func bearer(tok string) func(r *fasthttp.Request) {
	return func(r *fasthttp.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// rejected returns the value of gateway_auth_rejected_total{route,reason}.
func rejected(route, label string) uint64 {
	return metrics.ForRoute(route).AuthRejected(label).Get()
}

// wantInvalid is the WWW-Authenticate value for a refused token.
func wantInvalid(desc string) string {
	return `Bearer error="invalid_token", error_description="` + desc + `"`
}

// jwksDoc renders public keys as a JWK Set; kids[i] names keys[i].
func jwksDoc(t testing.TB, kids []string, pubs []any) []byte {
	t.Helper()
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	for i, pub := range pubs {
		doc.Keys = append(doc.Keys, jwkOf(t, kids[i], pub))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwkOf(t testing.TB, kid string, pub crypto.PublicKey) map[string]string {
	t.Helper()
	enc := func(b []byte) string { return b64(b) }
	switch k := pub.(type) {
	case *rsa.PublicKey:
		e := []byte{byte(k.E >> 16), byte(k.E >> 8), byte(k.E)}
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": enc(k.N.Bytes()), "e": enc(bytes.TrimLeft(e, "\x00"))}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name, "x": enc(raw[1 : 1+size]), "y": enc(raw[1+size:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(k)}
	}
	t.Fatalf("unsupported key %T", pub)
	return nil
}

// spellings returns the other spellings of tok that a lax base64url
// decoder reads as the same bytes: the spare low bits of the signature's
// last character set to every other value.
func spellings(t testing.TB, tok string) []string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	// A part of n chars carries floor(6n/8) bytes; the rest are spare bits.
	spare := len(sig)*6 - len(sig)*6/8*8
	if spare == 0 {
		t.Fatalf("signature %q has no spare bits", sig)
	}
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	var out []string
	for x := 1; x < 1<<spare; x++ {
		out = append(out, tok[:len(tok)-1]+string(alphabet[last^x]))
	}
	return out
}

func b64[T string | []byte](b T) string { return base64.RawURLEncoding.EncodeToString([]byte(b)) }

func testLogger() *zap.Logger { return zap.NewNop() }
