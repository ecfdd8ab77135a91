package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms the auth service issues.
const (
	HS256 = "HS256"
	RS256 = "RS256"
	EdDSA = "EdDSA"
)

// MinSecretBytes is the shortest HS256 secret accepted (RFC 7518 §3.2 asks
// for a key at least as long as the hash).
const MinSecretBytes = 32

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// Key errors.
var (
	ErrShortSecret       = errors.New("secret must be at least 32 bytes")
	ErrNoPEM             = errors.New("no PEM block found")
	ErrUnsupportedKey    = errors.New("private key must be RSA or Ed25519")
	ErrWeakRSAKey        = errors.New("RSA key must be at least 2048 bits")
	ErrEncryptedPEM      = errors.New("encrypted PEM keys are not supported")
	ErrUnsupportedPEMKey = errors.New("PEM block must be PRIVATE KEY or RSA PRIVATE KEY")
)

// Key is the service's signing key and the public half that verifies it.
// It is immutable and safe for concurrent use.
type Key struct {
	alg    string
	method jwt.SigningMethod
	sign   any // []byte, *rsa.PrivateKey or ed25519.PrivateKey
	verify any // []byte, *rsa.PublicKey or ed25519.PublicKey
	kid    string
}

// NewHMACKey returns an HS256 key. kid, when not empty, is written in every
// token's header. The secret is copied.
func NewHMACKey(secret []byte, kid string) (*Key, error) {
	if len(secret) < MinSecretBytes {
		return nil, ErrShortSecret
	}
	s := append([]byte(nil), secret...)
	return &Key{alg: HS256, method: jwt.SigningMethodHS256, sign: s, verify: s, kid: kid}, nil
}

// LoadPrivateKeyFile reads a PEM private key file. See ParsePrivateKey.
func LoadPrivateKeyFile(path, kid string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	return ParsePrivateKey(data, kid)
}

// ParsePrivateKey parses a PEM private key ("PRIVATE KEY", PKCS #8, or "RSA
// PRIVATE KEY", PKCS #1): an RSA key signs RS256, an Ed25519 key EdDSA. An
// empty kid defaults to the key's RFC 7638 thumbprint.
func ParsePrivateKey(data []byte, kid string) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, ErrNoPEM
	}
	if _, ok := block.Headers["DEK-Info"]; ok || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, ErrEncryptedPEM
	}
	var priv any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, ErrUnsupportedPEMKey
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	return NewKeyPair(priv, kid)
}

// NewKeyPair returns a key for an *rsa.PrivateKey (RS256) or an
// ed25519.PrivateKey (EdDSA). An empty kid defaults to the RFC 7638
// thumbprint of the public key.
func NewKeyPair(priv any, kid string) (*Key, error) {
	k := &Key{kid: kid}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if p.N.BitLen() < MinRSABits {
			return nil, ErrWeakRSAKey
		}
		k.alg, k.method, k.sign, k.verify = RS256, jwt.SigningMethodRS256, p, &p.PublicKey
	case ed25519.PrivateKey:
		k.alg, k.method, k.sign, k.verify = EdDSA, jwt.SigningMethodEdDSA, p, p.Public()
	case *ed25519.PrivateKey:
		return NewKeyPair(*p, kid)
	default:
		return nil, ErrUnsupportedKey
	}
	if k.kid == "" {
		k.kid = k.jwk().Thumbprint()
	}
	return k, nil
}

// Algorithm returns the JWS algorithm: HS256, RS256 or EdDSA.
func (k *Key) Algorithm() string { return k.alg }

// ID returns the key id written as "kid" ("" for an HS256 key without
// key_id).
func (k *Key) ID() string { return k.kid }

// Public returns the public key of a key pair, or nil for HS256.
func (k *Key) Public() crypto.PublicKey {
	if k.alg == HS256 {
		return nil
	}
	return k.verify
}

// Sign returns the compact JWS of c.
func (k *Key) Sign(c *Claims) (string, error) {
	t := jwt.NewWithClaims(k.method, c)
	if k.kid != "" {
		t.Header["kid"] = k.kid
	}
	s, err := t.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// JWK is one JSON Web Key (RFC 7517) with the members this service uses.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	// RSA.
	N string `json:"n,omitempty"`
	E string `json:"e,omitempty"`
	// OKP (Ed25519).
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
}

// JWKS is a JSON Web Key Set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

var b64 = base64.RawURLEncoding

func (k *Key) jwk() JWK {
	switch p := k.verify.(type) {
	case *rsa.PublicKey:
		return JWK{
			Kty: "RSA", Kid: k.kid, Alg: k.alg, Use: "sig",
			N: b64.EncodeToString(p.N.Bytes()),
			E: b64.EncodeToString(big.NewInt(int64(p.E)).Bytes()),
		}
	case ed25519.PublicKey:
		return JWK{Kty: "OKP", Kid: k.kid, Alg: k.alg, Use: "sig", Crv: "Ed25519", X: b64.EncodeToString(p)}
	}
	return JWK{}
}

// JWKS returns the key set publishing the public key, and false for an
// HS256 key, whose secret is never published.
func (k *Key) JWKS() (JWKS, bool) {
	if k.alg == HS256 {
		return JWKS{}, false
	}
	return JWKS{Keys: []JWK{k.jwk()}}, true
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the key,
// base64url-encoded: the hash of its required members in lexicographic order.
func (j JWK) Thumbprint() string {
	var v any
	switch j.Kty {
	case "RSA":
		v = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	case "OKP":
		v = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	default:
		return ""
	}
	// Marshalling a struct of strings cannot fail.
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return b64.EncodeToString(sum[:])
}
