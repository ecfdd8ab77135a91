package authserver

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/google/uuid"
)

// pair is an access and a refresh token issued together.
type pair struct {
	Access  string `json:"a"`
	Refresh string `json:"r"`
	// AccessExp is the access token's exp (unix seconds).
	AccessExp int64 `json:"x"`
	// RefreshExp is the refresh token's exp (unix seconds).
	RefreshExp int64 `json:"y"`
}

// issue signs a new pair for u in session sid at now. iat, nbf and exp
// are whole seconds (RFC 7519 NumericDate as consumers expect it): iat is
// now truncated to its second, which a revoke-all mark set during that
// second covers (see revokeAllMark).
func (s *Server) issue(u *store.User, sid string, now time.Time) (*pair, error) {
	iat := auth.UnixMilli(now.Unix() * 1000)
	p := &pair{
		AccessExp:  now.Add(s.accessTTL).Unix(),
		RefreshExp: now.Add(s.refreshTTL).Unix(),
	}
	aud := []string{s.audience}
	access := &auth.Claims{
		Issuer: s.issuer, Subject: u.ID, Audience: aud,
		ExpiresAt: auth.UnixMilli(p.AccessExp * 1000), IssuedAt: iat, NotBefore: iat,
		ID: uuid.NewString(), Type: auth.TypeAccess, Email: u.Email, Role: u.Role,
		Session: sid,
	}
	refresh := &auth.Claims{
		Issuer: s.issuer, Subject: u.ID, Audience: aud,
		ExpiresAt: auth.UnixMilli(p.RefreshExp * 1000), IssuedAt: iat, NotBefore: iat,
		ID: uuid.NewString(), Type: auth.TypeRefresh, Session: sid,
	}
	var err error
	if p.Access, err = s.key.Sign(access); err != nil {
		return nil, err
	}
	if p.Refresh, err = s.key.Sign(refresh); err != nil {
		return nil, err
	}
	return p, nil
}

// tokenHash is what the stores keep of a refresh token.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// successorLabel separates the successor key derivation from tokenHash: the
// store holds SHA-256(token), which must not decrypt the blob.
const successorLabel = "gatewayd refresh successor v1\x00"

var errSuccessor = errors.New("successor blob does not open")

func successorAEAD(oldToken string) (cipher.AEAD, error) {
	h := sha256.New()
	h.Write([]byte(successorLabel))
	h.Write([]byte(oldToken))
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func successorAD(userID, sid string) []byte {
	return []byte(userID + "\x00" + sid)
}

// sealSuccessor encrypts p under a key derived from the refresh token it
// replaces, bound to the user and session.
func sealSuccessor(oldToken, userID, sid string, p *pair) ([]byte, error) {
	aead, err := successorAEAD(oldToken)
	if err != nil {
		return nil, fmt.Errorf("successor cipher: %w", err)
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode successor: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("successor nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, successorAD(userID, sid)), nil
}

// openSuccessor decrypts a blob sealed by sealSuccessor.
func openSuccessor(oldToken, userID, sid string, blob []byte) (*pair, error) {
	aead, err := successorAEAD(oldToken)
	if err != nil {
		return nil, fmt.Errorf("successor cipher: %w", err)
	}
	if len(blob) < aead.NonceSize() {
		return nil, errSuccessor
	}
	plain, err := aead.Open(nil, blob[:aead.NonceSize()], blob[aead.NonceSize():], successorAD(userID, sid))
	if err != nil {
		return nil, errSuccessor
	}
	p := new(pair)
	if err := json.Unmarshal(plain, p); err != nil {
		return nil, fmt.Errorf("decode successor: %w", err)
	}
	return p, nil
}

// marshalJSON encodes v without HTML escaping and without the trailing
// newline of json.Encoder.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
