package auth

import (
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verification errors. Verify wraps the underlying golang-jwt error in one
// of these, so callers can choose a message without showing Go error text.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrTokenExpired = errors.New("token expired")
	ErrWrongType    = errors.New("wrong token type")
)

// Verifier checks tokens signed by one Key: signature and algorithm, iss,
// aud, exp (required), sub and jti (required) and typ. Decoding is strict:
// a token must be WellFormed, its base64url parts canonical (no spare bits
// set), and its header must not carry "crit" (see CheckCrit).
type Verifier struct {
	key    *Key
	parser *jwt.Parser
}

// NewVerifier returns a Verifier for tokens of key issued by issuer for
// audience, allowing leeway of clock skew on exp.
func NewVerifier(key *Key, issuer, audience string, leeway time.Duration) *Verifier {
	return &Verifier{
		key: key,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{key.alg}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
			jwt.WithStrictDecoding(),
		),
	}
}

func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if err := CheckCrit(t.Header); err != nil {
		return nil, err
	}
	if kid, ok := t.Header["kid"].(string); ok && v.key.kid != "" && kid != v.key.kid {
		return nil, ErrInvalidToken
	}
	return v.key.verify, nil
}

// Verify parses token and checks it is a valid token of type typ. The error
// wraps ErrTokenExpired, ErrWrongType or ErrInvalidToken.
func (v *Verifier) Verify(token, typ string) (*Claims, error) {
	if !WellFormed(token) {
		return nil, ErrInvalidToken
	}
	c := new(Claims)
	if _, err := v.parser.ParseWithClaims(token, c, v.keyFunc); err != nil {
		// An expired token with a bad signature is reported as invalid:
		// golang-jwt checks the signature before the claims, so
		// ErrTokenExpired implies a good signature.
		if errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, errors.Join(ErrTokenExpired, err)
		}
		return nil, errors.Join(ErrInvalidToken, err)
	}
	if c.Subject == "" || c.ID == "" || c.IssuedAt == 0 {
		return nil, ErrInvalidToken
	}
	if c.Type != typ {
		return nil, ErrWrongType
	}
	return c, nil
}
