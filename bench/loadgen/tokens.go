package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
)

// TokenOptions describe the users whose access tokens MintTokens signs.
type TokenOptions struct {
	// Secret is the HS256 secret the gateway's jwt plugin verifies with.
	Secret []byte
	// Issuer and Audience are the iss and aud claims.
	Issuer   string
	Audience string
	// Role is the role claim of every user.
	Role string
	// Users is how many distinct users (sub, email, jti) to mint.
	Users int
	// TTL is how long the tokens stay valid (exp = now + TTL).
	TTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ErrNoUsers is returned by MintTokens when Users is not positive.
var ErrNoUsers = errors.New("users must be at least 1")

// MintTokens signs one access token per user with the claims the auth
// service issues and the jwt plugin requires: sub, email, role, typ=access,
// jti, iat (milliseconds), exp (whole seconds), iss and aud.
func MintTokens(o TokenOptions) ([]string, error) {
	if o.Users < 1 {
		return nil, ErrNoUsers
	}
	key, err := auth.NewHMACKey(o.Secret, "")
	if err != nil {
		return nil, fmt.Errorf("mint tokens: %w", err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	t := now()
	// iat a second in the past keeps it clear of "issued in the future"
	// on hosts whose clocks differ slightly.
	iat := auth.UnixMilli(t.Add(-time.Second).UnixMilli())
	exp := auth.UnixMilli(t.Add(o.TTL).Unix() * 1000)
	var aud []string
	if o.Audience != "" {
		aud = []string{o.Audience}
	}
	toks := make([]string, o.Users)
	for i := range toks {
		n := strconv.Itoa(i)
		c := auth.Claims{
			Issuer:    o.Issuer,
			Subject:   "bench-user-" + n,
			Audience:  aud,
			ExpiresAt: exp,
			IssuedAt:  iat,
			ID:        "bench-jti-" + n + "-" + strconv.FormatInt(t.UnixNano(), 36),
			Type:      auth.TypeAccess,
			Email:     "bench-user-" + n + "@bench.example",
			Role:      o.Role,
		}
		if toks[i], err = key.Sign(&c); err != nil {
			return nil, fmt.Errorf("mint tokens: %w", err)
		}
	}
	return toks, nil
}

// WriteTokens writes one token per line.
func WriteTokens(w io.Writer, toks []string) error {
	bw := bufio.NewWriter(w)
	for _, t := range toks {
		if _, err := bw.WriteString(t + "\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadTokensFile reads a file written by WriteTokens (blank lines skipped).
func ReadTokensFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	defer f.Close()
	var toks []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("read tokens: %s: %w", path, ErrNoUsers)
	}
	return toks, nil
}
