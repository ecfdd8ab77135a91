package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func validClaims(typ string) *Claims {
	now := time.Now()
	return &Claims{
		Issuer: "iss", Subject: "sub", Audience: []string{"api"}, ID: "jti",
		IssuedAt: Milli(now), ExpiresAt: UnixMilli(now.Add(time.Minute).Unix() * 1000), Type: typ,
	}
}

func mustSign(t *testing.T, k *Key, c *Claims) string {
	t.Helper()
	s, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	hs, err := NewHMACKey([]byte(strings.Repeat("s", 32)), "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewHMACKey([]byte(strings.Repeat("o", 32)), "")
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := NewKeyPair(edPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(hs, "iss", "api", 0)
	edV := NewVerifier(ed, "iss", "api", 0)

	with := func(f func(c *Claims)) *Claims {
		c := validClaims(TypeAccess)
		f(c)
		return c
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(TypeAccess)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		giveV    *Verifier
		give     string
		giveType string
		wantErr  error
	}{
		{"valid", v, mustSign(t, hs, validClaims(TypeAccess)), TypeAccess, nil},
		{"valid EdDSA", edV, mustSign(t, ed, validClaims(TypeAccess)), TypeAccess, nil},
		{"wrong type", v, mustSign(t, hs, validClaims(TypeRefresh)), TypeAccess, ErrWrongType},
		{"other secret", v, mustSign(t, other, validClaims(TypeAccess)), TypeAccess, ErrInvalidToken},
		{"HS256 to an EdDSA verifier", edV, mustSign(t, hs, validClaims(TypeAccess)), TypeAccess, ErrInvalidToken},
		{"alg none", v, none, TypeAccess, ErrInvalidToken},
		{"expired", v, mustSign(t, hs, with(func(c *Claims) { c.ExpiresAt = Milli(time.Now().Add(-time.Second)) })), TypeAccess, ErrTokenExpired},
		{"no exp", v, mustSign(t, hs, with(func(c *Claims) { c.ExpiresAt = 0 })), TypeAccess, ErrInvalidToken},
		{"wrong issuer", v, mustSign(t, hs, with(func(c *Claims) { c.Issuer = "evil" })), TypeAccess, ErrInvalidToken},
		{"wrong audience", v, mustSign(t, hs, with(func(c *Claims) { c.Audience = []string{"other"} })), TypeAccess, ErrInvalidToken},
		{"no subject", v, mustSign(t, hs, with(func(c *Claims) { c.Subject = "" })), TypeAccess, ErrInvalidToken},
		{"no jti", v, mustSign(t, hs, with(func(c *Claims) { c.ID = "" })), TypeAccess, ErrInvalidToken},
		{"garbage", v, "a.b.c", TypeAccess, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.giveV.Verify(tt.give, tt.giveType)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyKidMismatch(t *testing.T) {
	a, _ := NewHMACKey([]byte(strings.Repeat("s", 32)), "a")
	b, _ := NewHMACKey([]byte(strings.Repeat("s", 32)), "b")
	if _, err := NewVerifier(a, "iss", "api", 0).Verify(mustSign(t, b, validClaims(TypeAccess)), TypeAccess); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("kid mismatch: %v", err)
	}
}

func BenchmarkSignHS256(b *testing.B) {
	k, _ := NewHMACKey([]byte(strings.Repeat("s", 32)), "")
	c := validClaims(TypeAccess)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	k, _ := NewHMACKey([]byte(strings.Repeat("s", 32)), "")
	v := NewVerifier(k, "iss", "api", 0)
	tok, _ := k.Sign(validClaims(TypeAccess))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, TypeAccess); err != nil {
			b.Fatal(err)
		}
	}
}
