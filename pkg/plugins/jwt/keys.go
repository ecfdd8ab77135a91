package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// minRSABits is the smallest RSA modulus accepted for signature checks.
const minRSABits = 2048

// algFamily groups algorithms by the kind of key they verify with.
type algFamily uint8

const (
	famNone algFamily = iota
	famHMAC
	famRSA
	famECDSA
	famEdDSA
)

// algorithms lists every algorithm the plugin can verify, with its family
// and, for HMAC, the minimum secret length (RFC 7518 §3.2) or, for ECDSA,
// the curve it needs.
var algorithms = map[string]struct {
	family   algFamily
	minBytes int
	curve    string
}{
	"HS256": {family: famHMAC, minBytes: 32},
	"HS384": {family: famHMAC, minBytes: 48},
	"HS512": {family: famHMAC, minBytes: 64},
	"RS256": {family: famRSA},
	"RS384": {family: famRSA},
	"RS512": {family: famRSA},
	"PS256": {family: famRSA},
	"PS384": {family: famRSA},
	"PS512": {family: famRSA},
	"ES256": {family: famECDSA, curve: "P-256"},
	"ES384": {family: famECDSA, curve: "P-384"},
	"ES512": {family: famECDSA, curve: "P-521"},
	"EdDSA": {family: famEdDSA},
}

// algorithmNames is the accepted list as printed in config errors.
const algorithmNames = "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA"

// verifyKey is one public key we hold, with what it may verify.
type verifyKey struct {
	kid string
	// alg, when the JWK named one, is the only algorithm the key verifies.
	alg    string
	family algFamily
	// curve is the ECDSA curve name ("P-256"), empty otherwise.
	curve string
	key   crypto.PublicKey
}

// fits reports whether k may verify a token signed with alg.
func (k *verifyKey) fits(alg string) bool {
	a, ok := algorithms[alg]
	if !ok || a.family != k.family {
		return false
	}
	if k.alg != "" && k.alg != alg {
		return false
	}
	return a.family != famECDSA || a.curve == k.curve
}

// describe names the key's type for error messages.
func (k *verifyKey) describe() string {
	switch k.family {
	case famRSA:
		return "an RSA key"
	case famECDSA:
		return "an ECDSA " + k.curve + " key"
	case famEdDSA:
		return "an Ed25519 key"
	}
	return "a key"
}

// newVerifyKey classifies a parsed public key.
func newVerifyKey(pub crypto.PublicKey) (*verifyKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, at least %d are required", k.N.BitLen(), minRSABits)
		}
		return &verifyKey{family: famRSA, key: k}, nil
	case *ecdsa.PublicKey:
		name := k.Curve.Params().Name
		switch name {
		case "P-256", "P-384", "P-521":
		default:
			return nil, fmt.Errorf("ECDSA curve %s is not supported (use P-256, P-384 or P-521)", name)
		}
		return &verifyKey{family: famECDSA, curve: name, key: k}, nil
	case ed25519.PublicKey:
		return &verifyKey{family: famEdDSA, key: k}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", pub)
}

// parsePublicKeyPEM reads the first PEM block of data: a PKIX "PUBLIC KEY",
// a PKCS #1 "RSA PUBLIC KEY" or a "CERTIFICATE".
func parsePublicKeyPEM(data []byte) (*verifyKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		pub crypto.PublicKey
		err error
	)
	switch {
	case block.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, errors.New("holds a private key; give the public key only (openssl pkey -in KEY -pubout)")
	default:
		return nil, fmt.Errorf("unexpected PEM block %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", strings.ToLower(block.Type), err)
	}
	return newVerifyKey(pub)
}

// keySet is an immutable set of public keys, indexed by kid.
type keySet struct {
	all   []*verifyKey
	byKid map[string][]*verifyKey
}

func newKeySet(keys []*verifyKey) *keySet {
	ks := &keySet{all: keys, byKid: make(map[string][]*verifyKey, len(keys))}
	for _, k := range keys {
		if k.kid != "" {
			ks.byKid[k.kid] = append(ks.byKid[k.kid], k)
		}
	}
	return ks
}

// jwk is one entry of a JSON Web Key Set (RFC 7517, RFC 7518 §6, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// jwkCurves maps JWK "crv" names of NIST curves to Go curves.
var jwkCurves = map[string]elliptic.Curve{
	"P-256": elliptic.P256(),
	"P-384": elliptic.P384(),
	"P-521": elliptic.P521(),
}

// parseJWKS decodes a JWK Set. Keys that cannot verify signatures (other
// uses, unknown types, weak or broken keys) are skipped and described in
// skipped; a set with no usable key is an error.
func parseJWKS(data []byte) (ks *keySet, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []*verifyKey
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		k, err := j.verifyKey()
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %q): %v", i, j.Kid, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) > 0 {
			return nil, skipped, fmt.Errorf("no usable signing key (%s)", strings.Join(skipped, "; "))
		}
		return nil, nil, errors.New("no usable signing key: the key set is empty")
	}
	return newKeySet(keys), skipped, nil
}

func (j *jwk) verifyKey() (*verifyKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	if j.Alg != "" {
		if _, ok := algorithms[j.Alg]; !ok || algorithms[j.Alg].family == famHMAC {
			return nil, fmt.Errorf("alg %q is not a supported public-key algorithm", j.Alg)
		}
	}
	var pub crypto.PublicKey
	switch j.Kty {
	case "RSA":
		n, err := b64Int(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64Int(j.E)
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("e is not a valid RSA public exponent")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		curve, ok := jwkCurves[j.Crv]
		if !ok {
			return nil, fmt.Errorf("crv %q is not supported", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errX := base64.RawURLEncoding.DecodeString(j.X)
		y, errY := base64.RawURLEncoding.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return nil, fmt.Errorf("x and y must be %d-byte base64url values", size)
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("invalid EC point: %w", err)
		}
		pub = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return nil, fmt.Errorf("crv %q is not supported (want Ed25519)", j.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("x must be a 32-byte base64url value")
		}
		pub = ed25519.PublicKey(x)
	default:
		return nil, fmt.Errorf("kty %q is not supported", j.Kty)
	}
	k, err := newVerifyKey(pub)
	if err != nil {
		return nil, err
	}
	k.kid, k.alg = j.Kid, j.Alg
	if k.alg != "" && !k.fits(k.alg) {
		return nil, fmt.Errorf("alg %s does not fit %s", k.alg, k.describe())
	}
	return k, nil
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url value")
	}
	return new(big.Int).SetBytes(b), nil
}
