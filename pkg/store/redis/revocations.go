package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
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
	if len(jti) > 0 {
		keys[n] = RevokedKey(string(jti))
		n++
	}
	if len(subject) > 0 {
		keys[n] = RevokeAllKey(string(subject))
		n++
	}
	if n == 0 {
		return false, nil
	}
	var res []rueidis.RedisResult
	if s.cache && maxStale > 0 {
		multi := make([]rueidis.CacheableTTL, n)
		for i := range n {
			multi[i] = rueidis.CT(s.client.B().Get().Key(keys[i]).Cache(), maxStale)
		}
		res = s.client.DoMultiCache(ctx, multi...)
	} else {
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
