package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

// TestThumbprint checks the RFC 7638 §3.1 and RFC 8037 §A.3 examples.
func TestThumbprint(t *testing.T) {
	tests := []struct {
		name string
		give JWK
		want string
	}{
		{
			name: "RFC 7638 RSA",
			give: JWK{Kty: "RSA", E: "AQAB", Kid: "ignored", Alg: "RS256",
				N: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
			want: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
		},
		{
			name: "RFC 8037 Ed25519",
			give: JWK{Kty: "OKP", Crv: "Ed25519", X: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
			want: "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give.Thumbprint(); got != tt.want {
				t.Fatalf("Thumbprint = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, der []byte, headers map[string]string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: headers, Bytes: der})
	}
	tests := []struct {
		name    string
		give    []byte
		wantErr error
	}{
		{"not PEM", []byte("nope"), ErrNoPEM},
		{"weak RSA", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small), nil), ErrWeakRSAKey},
		{"ECDSA", enc("PRIVATE KEY", ecDER, nil), ErrUnsupportedKey},
		{"public key", enc("PUBLIC KEY", []byte{1}, nil), ErrUnsupportedPEMKey},
		{"encrypted", enc("RSA PRIVATE KEY", []byte{1}, map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}), ErrEncryptedPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePrivateKey(tt.give, ""); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := NewHMACKey(make([]byte, 31), ""); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("31-byte secret: %v", err)
	}
}
