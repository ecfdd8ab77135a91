package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestCheckSecretRefuses(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr error
	}{
		{name: "short", give: "0123456789abcdef", wantErr: ErrShortSecret},
		{name: "REPLACE_ME", give: "REPLACE_ME_REPLACE_ME_REPLACE_ME", wantErr: ErrPlaceholderSecret},
		{name: "change me", give: "please-change-me-before-going-live-9f3k", wantErr: ErrPlaceholderSecret},
		{name: "changeme", give: "Kq7vR2mZ-changeme-Xw9pL4sT-Hn6yB3cJ", wantErr: ErrPlaceholderSecret},
		{name: "secret", give: "my-jwt-secret-for-the-gateway-2024-x", wantErr: ErrPlaceholderSecret},
		{name: "password", give: "Password-Password-Password-12345", wantErr: ErrPlaceholderSecret},
		{name: "example", give: "example-hs256-key-for-documentation", wantErr: ErrPlaceholderSecret},
		{name: "xxx", give: "jwt-key-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", wantErr: ErrPlaceholderSecret},
		{name: "one character", give: strings.Repeat("A", 40), wantErr: ErrRepetitiveSecret},
		{name: "two characters", give: strings.Repeat("ab", 20), wantErr: ErrRepetitiveSecret},
		{name: "pattern cut short", give: strings.Repeat("k3Y!", 9) + "k3", wantErr: ErrRepetitiveSecret},
		{name: "hex pattern twice", give: "0f1e2d3c4b5a69780f1e2d3c4b5a6978", wantErr: ErrRepetitiveSecret},
		{name: "one odd character", give: strings.Repeat("q", 39) + "Z", wantErr: ErrLowEntropySecret},
		{name: "digits only", give: "83920174658391027465839201746583", wantErr: ErrLowEntropySecret},
		{name: "few symbols", give: "abbaabbbabaaabbbababbbaabaabbbaabab", wantErr: ErrLowEntropySecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSecret([]byte(tt.give))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CheckSecret(%q) = %v, want %v", tt.give, err, tt.wantErr)
			}
		})
	}
}

// TestCheckSecretAcceptsWordInRandom: a random secret that happens to
// contain a placeholder word is no placeholder.
func TestCheckSecretAcceptsWordInRandom(t *testing.T) {
	const give = "SwaoYH8VEt0xDCunCHXZdummyQU0DyoZ6c94Q0U3lUJo6"
	if err := CheckSecret([]byte(give)); err != nil {
		t.Fatalf("CheckSecret(%q) = %v, want nil", give, err)
	}
}

// TestCheckSecretAcceptsRandom draws secrets the way the documentation
// says to and checks none is refused.
func TestCheckSecretAcceptsRandom(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		give func() string
	}{
		{name: "48 bytes base64", give: func() string { return base64.StdEncoding.EncodeToString(random(48)) }},
		{name: "32 bytes base64", give: func() string { return base64.StdEncoding.EncodeToString(random(32)) }},
		{name: "32 bytes hex", give: func() string { return hex.EncodeToString(random(32)) }},
		{name: "24 bytes base64url", give: func() string { return base64.RawURLEncoding.EncodeToString(random(24)) }},
		{name: "32 raw bytes", give: func() string { return string(random(32)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2000 {
				if s := tt.give(); CheckSecret([]byte(s)) != nil {
					t.Fatalf("CheckSecret(%q) = %v, want nil", s, CheckSecret([]byte(s)))
				}
			}
		})
	}
}
