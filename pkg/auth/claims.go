// Package auth holds what the auth service and the gateway agree on about
// tokens: the claims of access and refresh tokens, the signing key (HS256
// secret, RSA or Ed25519 key pair), the JWKS document that publishes a key
// pair's public half, token verification, and the password and email rules.
//
// Token times are kept in unix milliseconds, as the revoke-all mark of
// store.Revocations is. The auth service issues whole seconds (iat, nbf and
// exp are integers, the RFC 7519 NumericDate other consumers expect), which
// UnixMilli writes without a fraction; tokens with a fractional iat (issued
// by earlier versions) are still read to the millisecond. This package never
// touches golang-jwt's global jwt.TimePrecision.
package auth

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, the "typ" claim.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// UnixMilli is a JWT NumericDate kept in unix milliseconds. It marshals as
// seconds with a fraction of at most three digits, written only when the
// time is not a whole second.
type UnixMilli int64

// Milli returns t truncated to the millisecond.
func Milli(t time.Time) UnixMilli { return UnixMilli(t.UnixMilli()) }

// Time returns u as a time.Time.
func (u UnixMilli) Time() time.Time { return time.UnixMilli(int64(u)) }

// MarshalJSON implements json.Marshaler.
func (u UnixMilli) MarshalJSON() ([]byte, error) {
	return u.AppendJSON(nil), nil
}

// AppendJSON appends u as a JSON number of seconds to dst.
func (u UnixMilli) AppendJSON(dst []byte) []byte {
	ms := int64(u)
	neg := ms < 0
	if neg {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		dst = append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// ErrBadNumericDate is returned for a date claim that is not a JSON number.
var ErrBadNumericDate = errors.New("date claim is not a number")

// UnmarshalJSON implements json.Unmarshaler. Decimal numbers are read
// exactly (digits past the millisecond are dropped); other forms go through
// float64 and are rounded to the millisecond.
func (u *UnixMilli) UnmarshalJSON(b []byte) error {
	ms, ok := ParseSecondsMilli(b)
	if !ok {
		return ErrBadNumericDate
	}
	*u = UnixMilli(ms)
	return nil
}

// ParseSecondsMilli parses a JSON number of seconds (as in a JWT iat or exp)
// into unix milliseconds.
func ParseSecondsMilli(b []byte) (int64, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	start := i
	var sec int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if sec > (math.MaxInt64/1000-9)/10 {
			return 0, false
		}
		sec = sec*10 + int64(b[i]-'0')
	}
	if i == start {
		return 0, false
	}
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		fs := i
		for n := 0; i < len(b) && b[i] >= '0' && b[i] <= '9'; i, n = i+1, n+1 {
			if n < 3 {
				frac = frac*10 + int64(b[i]-'0')
			}
		}
		if i == fs {
			return 0, false
		}
		for n := i - fs; n < 3; n++ {
			frac *= 10
		}
	}
	if i != len(b) {
		// Exponent form: rare, read through float64.
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/1000 {
			return 0, false
		}
		return int64(math.Round(f * 1000)), true
	}
	ms := sec*1000 + frac
	if neg {
		ms = -ms
	}
	return ms, true
}

// Claims are the claims of the tokens the auth service issues.
type Claims struct {
	Issuer   string           `json:"iss"`
	Subject  string           `json:"sub"`
	Audience jwt.ClaimStrings `json:"aud"`
	// ExpiresAt is exp; the service issues whole seconds.
	ExpiresAt UnixMilli `json:"exp"`
	// IssuedAt is iat; the service issues whole seconds.
	IssuedAt UnixMilli `json:"iat"`
	// NotBefore is nbf (0: absent); the service sets it to iat.
	NotBefore UnixMilli `json:"nbf"`
	ID        string    `json:"jti"`
	// Type is "access" or "refresh".
	Type  string `json:"typ"`
	Email string `json:"email,omitempty"`
	Role  string `json:"role,omitempty"`
	// Session is the session (refresh family) the token belongs to: both
	// tokens of a pair carry it, so a logout with the access token alone
	// can end the session.
	Session string `json:"sid,omitempty"`
}

var _ jwt.Claims = (*Claims)(nil)

// wireClaims fixes the JSON shape: a single audience is a plain string.
type wireClaims struct {
	Issuer    string    `json:"iss,omitempty"`
	Subject   string    `json:"sub,omitempty"`
	Audience  any       `json:"aud,omitempty"`
	ExpiresAt UnixMilli `json:"exp"`
	IssuedAt  UnixMilli `json:"iat"`
	NotBefore UnixMilli `json:"nbf,omitempty"`
	ID        string    `json:"jti,omitempty"`
	Type      string    `json:"typ,omitempty"`
	Email     string    `json:"email,omitempty"`
	Role      string    `json:"role,omitempty"`
	Session   string    `json:"sid,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (c *Claims) MarshalJSON() ([]byte, error) {
	w := wireClaims{
		Issuer: c.Issuer, Subject: c.Subject, ExpiresAt: c.ExpiresAt, IssuedAt: c.IssuedAt, NotBefore: c.NotBefore,
		ID: c.ID, Type: c.Type, Email: c.Email, Role: c.Role, Session: c.Session,
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		w.Audience = c.Audience[0]
	default:
		w.Audience = []string(c.Audience)
	}
	return json.Marshal(&w)
}

// GetExpirationTime implements jwt.Claims.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) {
	if c.ExpiresAt == 0 {
		return nil, nil
	}
	return &jwt.NumericDate{Time: c.ExpiresAt.Time()}, nil
}

// GetIssuedAt implements jwt.Claims.
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error) {
	if c.IssuedAt == 0 {
		return nil, nil
	}
	return &jwt.NumericDate{Time: c.IssuedAt.Time()}, nil
}

// GetNotBefore implements jwt.Claims.
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error) {
	if c.NotBefore == 0 {
		return nil, nil
	}
	return &jwt.NumericDate{Time: c.NotBefore.Time()}, nil
}

// GetIssuer implements jwt.Claims.
func (c *Claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *Claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *Claims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }
