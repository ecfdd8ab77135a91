package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

//go:embed revokeall.lua
var revokeAllLua string

// revokeAllScript sets a revoke-all mark that never moves backwards.
var revokeAllScript = rueidis.NewLuaScript(revokeAllLua)

// Key prefixes of the revocation layout documented in package store; the
// id follows, then "}".
const (
	RevokedKeyPrefix   = "gatewayd:revoked:{"
	RevokeAllKeyPrefix = "gatewayd:revoke-all:{"
)

// RevokedKey returns the key recording that the token jti is revoked.
func RevokedKey(jti string) string { return RevokedKeyPrefix + jti + "}" }

// RevokeAllKey returns the key holding subject's revoke-all mark.
func RevokeAllKey(subject string) string { return RevokeAllKeyPrefix + subject + "}" }

// cachedGets pools the command arrays of IsRevoked's cached reads.
var cachedGets = sync.Pool{New: func() any { return new([2]rueidis.CacheableTTL) }}

// revocationKeys returns RevokedKey(jti) and RevokeAllKey(subject), or ""
// for an empty id, in one allocation: both are parts of one string, which
// is never modified.
func revocationKeys(jti, subject []byte) (jtiKey, subjectKey string) {
	size := 0
	if len(jti) > 0 {
		size += len(RevokedKeyPrefix) + len(jti) + 1
	}
	if len(subject) > 0 {
		size += len(RevokeAllKeyPrefix) + len(subject) + 1
	}
	if size == 0 {
		return "", ""
	}
	var b strings.Builder
	b.Grow(size)
	if len(jti) > 0 {
		b.WriteString(RevokedKeyPrefix)
		b.Write(jti)
		b.WriteByte('}')
	}
	split := b.Len()
	if len(subject) > 0 {
		b.WriteString(RevokeAllKeyPrefix)
		b.Write(subject)
		b.WriteByte('}')
	}
	all := b.String()
	return all[:split], all[split:]
}

var errTTL = errors.New("redis: revoke-all ttl must be at least 1ms")

// Revoke marks jti as revoked until until (SET PXAT, so the key expires
// with the token). A time already past is a no-op.
func (s *Store) Revoke(ctx context.Context, jti string, until time.Time) error {
	if !until.After(time.Now()) {
		return nil
	}
	// Rounded up to the millisecond: the key never expires before the token.
	ms := (until.UnixNano() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	key := RevokedKey(jti)
	cmd := s.client.B().Set().Key(key).Value("1").PxatMillisecondsTimestamp(ms).Build()
	if err := s.client.Do(ctx, cmd).Error(); err != nil {
		return wrapErr("revoke", err)
	}
	s.fence(ctx, key)
	return nil
}

// RevokeAll sets subject's mark to at (unix ms) with a ttl of at least 1ms,
// atomically keeping a later mark if one is in place.
func (s *Store) RevokeAll(ctx context.Context, subject string, at time.Time, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return errTTL
	}
	key := RevokeAllKey(subject)
	err := revokeAllScript.Exec(ctx, s.client,
		[]string{key},
		[]string{strconv.FormatInt(at.UnixMilli(), 10), strconv.FormatInt(ttl.Milliseconds(), 10)}).Error()
	if err != nil {
		return wrapErr("revoke all", err)
	}
	s.fence(ctx, key)
	return nil
}

// IsRevoked reads the jti key and the subject's mark in one round trip
// (GET both; an empty jti or subject is skipped). With client-side caching
// on and maxStale > 0 the answers come from the rueidis cache, kept at most
// maxStale (and never past the key's own expiry) and invalidated by the
// server as soon as a key changes.
func (s *Store) IsRevoked(ctx context.Context, jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (bool, error) {
	var keys [2]string
	n := 0
	jtiKey, subjectKey := revocationKeys(jti, subject)
	if len(jti) > 0 {
		keys[n] = jtiKey
		n++
	}
	if len(subject) > 0 {
		keys[n] = subjectKey
		n++
	}
	if n == 0 {
		return false, nil
	}
	var res []rueidis.RedisResult
	if s.cache && maxStale > 0 {
		// rueidis reads the commands during the call and copies those it
		// sends, so the array goes back to the pool when it returns.
		multi := cachedGets.Get().(*[2]rueidis.CacheableTTL)
		for i := range n {
			multi[i] = rueidis.CT(s.client.B().Get().Key(keys[i]).Cache(), maxStale)
		}
		res = s.client.DoMultiCache(ctx, multi[:n]...)
		*multi = [2]rueidis.CacheableTTL{}
		cachedGets.Put(multi)
	} else {
		// Not pooled: DoMulti queues this slice itself, and on a deadline it
		// returns before the slice is written.
		multi := make(rueidis.Commands, n)
		for i := range n {
			multi[i] = s.client.B().Get().Key(keys[i]).Build()
		}
		res = s.client.DoMulti(ctx, multi...)
	}
	// A key that proves the token revoked wins over an error on the other.
	i := 0
	var failed error
	if len(jti) > 0 {
		switch err := res[0].Error(); {
		case err == nil:
			return true, nil
		case !rueidis.IsRedisNil(err):
			failed = err
		}
		i++
	}
	if len(subject) > 0 {
		switch err := res[i].Error(); {
		case err == nil:
			mark, err := res[i].AsInt64()
			if err != nil {
				return false, fmt.Errorf("redis: revocation check: mark of subject %q: %w", subject, err)
			}
			if issuedAtMs <= mark {
				return true, nil
			}
		case !rueidis.IsRedisNil(err) && failed == nil:
			failed = err
		}
	}
	if failed != nil {
		return false, wrapErr("revocation check", failed)
	}
	return false, nil
}
