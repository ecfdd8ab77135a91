package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// malleate returns the other spellings of tok that a lax base64url decoder
// reads as the same bytes: the spare low bits of the signature's last
// character set to every other value.
func malleate(t testing.TB, tok string) []string {
	t.Helper()
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	// A part of n chars carries floor(6n/8) bytes; the rest are spare bits.
	spare := len(sig)*6 - len(sig)*6/8*8
	if spare == 0 {
		t.Fatalf("signature %q has no spare bits", sig)
	}
	last := strings.IndexByte(b64url, tok[len(tok)-1])
	var out []string
	for x := 1; x < 1<<spare; x++ {
		out = append(out, tok[:len(tok)-1]+string(b64url[last^x]))
	}
	return out
}

func TestVerifyRefusesOtherSpellings(t *testing.T) {
	hs, err := NewHMACKey([]byte(strings.Repeat("s", 32)), "")
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
	tests := []struct {
		name      string
		giveKey   *Key
		wantCount int
	}{
		{name: "HS256", giveKey: hs, wantCount: 3},
		{name: "EdDSA", giveKey: ed, wantCount: 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(tt.giveKey, "iss", "api", 0)
			tok := mustSign(t, tt.giveKey, validClaims(TypeRefresh))
			if _, err := v.Verify(tok, TypeRefresh); err != nil {
				t.Fatalf("canonical token: %v", err)
			}
			lax := jwt.NewParser(jwt.WithValidMethods([]string{tt.giveKey.alg}))
			variants := malleate(t, tok)
			if len(variants) != tt.wantCount {
				t.Fatalf("%d variants, want %d", len(variants), tt.wantCount)
			}
			// Each spelling carries a valid signature for a lax decoder ...
			for _, m := range variants {
				if _, err := lax.Parse(m, func(*jwt.Token) (any, error) { return tt.giveKey.verify, nil }); err != nil {
					t.Fatalf("lax decoder refused %s: %v (the test does not malleate)", m, err)
				}
			}
			// ... and none but the canonical one verifies here, nor a
			// spelling with line breaks the base64 decoder would skip.
			variants = append(variants,
				tok+"\n",
				tok[:len(tok)-4]+"\r\n"+tok[len(tok)-4:],
				strings.Replace(tok, ".", ".\n", 1),
				tok+"=",
			)
			for _, m := range variants {
				if _, err := v.Verify(m, TypeRefresh); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("Verify(%q) = %v, want ErrInvalidToken", m, err)
				}
			}
		})
	}
}

func TestVerifyRefusesCrit(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	k, err := NewHMACKey(secret, "")
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(k, "iss", "api", 0)
	tests := []struct {
		name     string
		giveCrit any
	}{
		{name: "unknown extension", giveCrit: []string{"http://example.com/ext"}},
		{name: "registered claim name", giveCrit: []string{"exp"}},
		{name: "b64", giveCrit: []string{"b64"}},
		{name: "empty list", giveCrit: []string{}},
		{name: "not a list", giveCrit: "exp"},
		{name: "list of numbers", giveCrit: []int{1}},
		{name: "null", giveCrit: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(TypeAccess))
			tok.Header["crit"] = tt.giveCrit
			tok.Header["http://example.com/ext"] = true
			s, err := tok.SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(s, TypeAccess); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrCritHeader) {
				t.Fatalf("Verify = %v, want ErrInvalidToken and ErrCritHeader", err)
			}
		})
	}
}

func TestWellFormed(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "a.b.c", want: true},
		{give: "aB-_0.9z.Q", want: true},
		{give: "a.b", want: false},
		{give: "a.b.c.d", want: false},
		{give: ".b.c", want: false},
		{give: "a..c", want: false},
		{give: "a.b.", want: false},
		{give: "a.b.c=", want: false},
		{give: "a.b.c\n", want: false},
		{give: "a.b\r\n.c", want: false},
		{give: "a.b.c d", want: false},
		{give: "a+/.b.c", want: false},
		{give: "", want: false},
	}
	for _, tt := range tests {
		if got := WellFormed(tt.give); got != tt.want {
			t.Errorf("WellFormed(%q) = %v, want %v", tt.give, got, tt.want)
		}
		if got := WellFormed([]byte(tt.give)); got != tt.want {
			t.Errorf("WellFormed([]byte(%q)) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
