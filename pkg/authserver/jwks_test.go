package authserver

import (
	"cmp"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/golang-jwt/jwt/v5"
)

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// publicFromJWK rebuilds the public key a client would from the document.
func publicFromJWK(t *testing.T, k auth.JWK) crypto.PublicKey {
	t.Helper()
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch k.Kty {
	case "RSA":
		return &rsa.PublicKey{N: new(big.Int).SetBytes(dec(k.N)), E: int(new(big.Int).SetBytes(dec(k.E)).Int64())}
	case "OKP":
		return ed25519.PublicKey(dec(k.X))
	}
	t.Fatalf("unexpected kty %q", k.Kty)
	return nil
}

func TestJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		giveDER []byte
		giveTyp string
		giveKid string
		wantAlg string
		wantKty string
	}{
		{"RS256 PKCS8", pkcs8(t, rsaKey), "PRIVATE KEY", "", auth.RS256, "RSA"},
		{"RS256 PKCS1 with key_id", x509.MarshalPKCS1PrivateKey(rsaKey), "RSA PRIVATE KEY", "rsa-2026", auth.RS256, "RSA"},
		{"EdDSA", pkcs8(t, edKey), "PRIVATE KEY", "", auth.EdDSA, "OKP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Secret = ""
			cfg.PrivateKeyFile = writePEM(t, tt.giveTyp, tt.giveDER)
			cfg.KeyID = tt.giveKid
			h := newHarness(t, boltBackend(), cfg)

			r := h.do("GET", PathJWKS, nil)
			wantStatus(t, r, http.StatusOK)
			if r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "public, max-age=300" {
				t.Fatalf("headers %v", r.header)
			}
			var set auth.JWKS
			if err := json.Unmarshal(r.body, &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 {
				t.Fatalf("keys = %d, want 1", len(set.Keys))
			}
			k := set.Keys[0]
			if k.Kty != tt.wantKty || k.Alg != tt.wantAlg || k.Use != "sig" || k.Kid == "" {
				t.Fatalf("jwk = %+v", k)
			}
			// Without key_id the kid is the RFC 7638 thumbprint.
			if wantKid := cmp.Or(tt.giveKid, k.Thumbprint()); k.Kid != wantKid {
				t.Fatalf("kid = %q, want %q", k.Kid, wantKid)
			}

			_, tk := h.account("jwks@example.com")
			pub := publicFromJWK(t, k)
			tok, err := jwt.Parse(tk.AccessToken, func(tok *jwt.Token) (any, error) {
				if tok.Header["kid"] != k.Kid {
					t.Errorf("token kid %v, want %q", tok.Header["kid"], k.Kid)
				}
				return pub, nil
			}, jwt.WithValidMethods([]string{tt.wantAlg}), jwt.WithAudience("api"), jwt.WithIssuer("gatewayd-auth"))
			if err != nil || !tok.Valid {
				t.Fatalf("access token does not verify with the published key: %v", err)
			}
			wantStatus(t, h.do("GET", PathMe, nil, bearer(tk.AccessToken)), http.StatusOK)
		})
	}
}
