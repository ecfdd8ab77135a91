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
// server as soon as a key changes; the answers read so are kept by token id
// and subject too, and a repeated check is answered by CachedRevoked
// without a call to rueidis.
func (s *Store) IsRevoked(ctx context.Context, jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (bool, error) {
	if len(jti) == 0 && len(subject) == 0 {
		return false, nil
	}
	cached := s.answers != nil && maxStale > 0
	if cached {
		if revoked, ok := s.CachedRevoked(jti, subject, issuedAtMs, maxStale); ok {
			return revoked, nil
		}
	}
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
	var res []rueidis.RedisResult
	var start time.Time
	var jtiEpoch, subjectEpoch uint64
	if cached {
		// Before the read: an invalidation from here on keeps its answer
		// out of s.answers.
		start = time.Now()
		jtiEpoch, subjectEpoch = s.answers.epochs(jti, subject)
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
	revoked := false
	var failed error
	if len(jti) > 0 {
		switch err := res[0].Error(); {
		case err == nil:
			revoked = true
			if cached {
				s.answers.store(true, jti, jtiEpoch, answerOf(res[0], start, maxStale, true, 0))
			}
		case rueidis.IsRedisNil(err):
			if cached {
				s.answers.store(true, jti, jtiEpoch, answerOf(res[0], start, maxStale, false, 0))
			}
		default:
			failed = err
		}
		i++
	}
	if len(subject) > 0 {
		switch err := res[i].Error(); {
		case err == nil:
			mark, err := res[i].AsInt64()
			if err != nil {
				if revoked {
					return true, nil
				}
				return false, fmt.Errorf("redis: revocation check: mark of subject %q: %w", subject, err)
			}
			if cached {
				s.answers.store(false, subject, subjectEpoch, answerOf(res[i], start, maxStale, true, mark))
			}
			if issuedAtMs <= mark {
				revoked = true
			}
		case rueidis.IsRedisNil(err):
			if cached {
				s.answers.store(false, subject, subjectEpoch, answerOf(res[i], start, maxStale, false, 0))
			}
		default:
			if failed == nil {
				failed = err
			}
		}
	}
	if revoked {
		return true, nil
	}
	if failed != nil {
		return false, wrapErr("revocation check", failed)
	}
	return false, nil
}

// answerOf is the answer a cached read returned: served until maxStale
// after start, or until the expiry rueidis holds for the entry if sooner.
func answerOf(r rueidis.RedisResult, start time.Time, maxStale time.Duration, present bool, mark int64) answer {
	until := start.Add(maxStale).UnixNano()
	if pxat := r.CachePXAT(); pxat > 0 {
		until = min(until, pxat*int64(time.Millisecond))
	}
	return answer{read: start.UnixNano(), until: until, present: present, mark: mark}
}

// CachedRevoked answers IsRevoked from the answers earlier cached reads
// returned, if they are at most maxStale old, without I/O, without calling
// rueidis and without allocating. ok is false when it holds no such answer
// for a key it needs (or client-side caching is off, or maxStale is 0):
// the caller then calls IsRevoked.
func (s *Store) CachedRevoked(jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (revoked, ok bool) {
	if s.answers == nil || maxStale <= 0 {
		return false, false
	}
	now := time.Now().UnixNano()
	jtiOK, subjectOK := len(jti) == 0, len(subject) == 0
	if !jtiOK {
		a, ok := s.answers.lookup(true, jti, now, maxStale)
		if ok && a.present {
			return true, true
		}
		jtiOK = ok
	}
	if !subjectOK {
		a, ok := s.answers.lookup(false, subject, now, maxStale)
		if ok && a.present && issuedAtMs <= a.mark {
			return true, true
		}
		subjectOK = ok
	}
	return false, jtiOK && subjectOK
}
