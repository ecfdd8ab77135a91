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

// plainGet holds the commands of a plain (uncached) revocation read and the
// keys they name, built into one buffer handed to rueidis as strings over
// it (rueidis.BinaryString). DoMulti queues the command array itself and,
// on a deadline, returns before the commands are written: so a plainGet
// goes back to the pool only when every command was answered (see
// scriptCall), and is otherwise left to the garbage collector.
type plainGet struct {
	buf  []byte
	cmds [2]rueidis.Completed
}

var plainGets = sync.Pool{New: func() any { return &plainGet{buf: make([]byte, 0, 128)} }}

// keys builds RevokedKey(jti) and RevokeAllKey(subject) into g's buffer
// and returns those of non-empty ids, jti's first.
func (g *plainGet) keys(jti, subject []byte) [2]string {
	g.buf = g.buf[:0]
	if len(jti) > 0 {
		g.buf = append(g.buf, RevokedKeyPrefix...)
		g.buf = append(g.buf, jti...)
		g.buf = append(g.buf, '}')
	}
	split := len(g.buf)
	if len(subject) > 0 {
		g.buf = append(g.buf, RevokeAllKeyPrefix...)
		g.buf = append(g.buf, subject...)
		g.buf = append(g.buf, '}')
	}
	var keys [2]string
	n := 0
	if split > 0 {
		keys[n] = rueidis.BinaryString(g.buf[:split])
		n++
	}
	if len(g.buf) > split {
		keys[n] = rueidis.BinaryString(g.buf[split:])
	}
	return keys
}

// done ends the read whose results are res: g goes back to the pool if
// the server answered every command (a value, nil or an error reply).
func (g *plainGet) done(res []rueidis.RedisResult) {
	for i := range res {
		if err := res[i].Error(); err != nil && !rueidis.IsRedisNil(err) {
			if _, reply := rueidis.IsRedisErr(err); !reply {
				return
			}
		}
	}
	// rueidis recycles the commands it has answered: drop them.
	g.cmds = [2]rueidis.Completed{}
	if cap(g.buf) > 4096 {
		g.buf = make([]byte, 0, 128)
	}
	plainGets.Put(g)
}

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
//
// When every key the check needs was absent at its last read and the
// server still tracks it (answers.tracked), the keys are read again with
// plain GETs rather than through the rueidis cache: the values are as
// fresh, the server goes on invalidating the keys, and it costs a few
// allocations instead of about 25 (the cache's entries and flights, the
// MULTI/PTTL/GET/EXEC replies).
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
	n := 0
	if len(jti) > 0 {
		n++
	}
	if len(subject) > 0 {
		n++
	}
	var res []rueidis.RedisResult
	var start time.Time
	var jtiEpoch, subjectEpoch uint64
	var jtiTracked, subjectTracked int64
	plain := !cached
	if cached {
		// Before the read: an invalidation from here on keeps its answer
		// out of s.answers.
		start = time.Now()
		jtiEpoch, subjectEpoch = s.answers.epochs(jti, subject)
		now := start.UnixNano()
		jtiTracked, subjectTracked = now, now
		jtiOK, subjectOK := len(jti) == 0, len(subject) == 0
		if !jtiOK {
			jtiTracked, jtiOK = s.answers.tracked(true, jti, now)
		}
		if !subjectOK {
			subjectTracked, subjectOK = s.answers.tracked(false, subject, now)
		}
		plain = jtiOK && subjectOK
		if !plain {
			jtiTracked, subjectTracked = now, now
		}
	}
	if plain {
		g := plainGets.Get().(*plainGet)
		keys := g.keys(jti, subject)
		for i := range n {
			g.cmds[i] = s.client.B().Get().Key(keys[i]).Build()
		}
		res = s.client.DoMulti(ctx, g.cmds[:n]...)
		g.done(res)
	} else {
		// The keys are fresh strings: the rueidis cache keeps them.
		var keys [2]string
		jtiKey, subjectKey := revocationKeys(jti, subject)
		if len(jti) > 0 {
			keys[0] = jtiKey
		}
		if len(subject) > 0 {
			keys[n-1] = subjectKey
		}
		// rueidis reads the commands during the call and copies those it
		// sends, so the array goes back to the pool when it returns.
		multi := cachedGets.Get().(*[2]rueidis.CacheableTTL)
		for i := range n {
			multi[i] = rueidis.CT(s.client.B().Get().Key(keys[i]).Cache(), maxStale)
		}
		res = s.client.DoMultiCache(ctx, multi[:n]...)
		*multi = [2]rueidis.CacheableTTL{}
		cachedGets.Put(multi)
	}
	// Answers are kept from reads through the cache, and from plain
	// re-reads of tracked keys that are still absent (a plain read does not
	// learn a present key's expiry: such a key is read through the cache
	// once its invalidation has removed the entry).
	keep := func(present bool) bool { return cached && (!plain || !present) }
	// A key that proves the token revoked wins over an error on the other.
	i := 0
	revoked := false
	var failed error
	if len(jti) > 0 {
		switch err := res[0].Error(); {
		case err == nil:
			revoked = true
			if keep(true) {
				s.answers.store(true, jti, jtiEpoch, answerOf(res[0], start, jtiTracked, maxStale, true, 0))
			}
		case rueidis.IsRedisNil(err):
			if keep(false) {
				s.answers.store(true, jti, jtiEpoch, answerOf(res[0], start, jtiTracked, maxStale, false, 0))
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
			if keep(true) {
				s.answers.store(false, subject, subjectEpoch, answerOf(res[i], start, subjectTracked, maxStale, true, mark))
			}
			if issuedAtMs <= mark {
				revoked = true
			}
		case rueidis.IsRedisNil(err):
			if keep(false) {
				s.answers.store(false, subject, subjectEpoch, answerOf(res[i], start, subjectTracked, maxStale, false, 0))
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

// answerOf is the answer a read returned: served until maxStale after
// start, or until the expiry rueidis holds for the entry if sooner; tracked
// is when the key was last read through the cache.
func answerOf(r rueidis.RedisResult, start time.Time, tracked int64, maxStale time.Duration, present bool, mark int64) answer {
	until := start.Add(maxStale).UnixNano()
	if pxat := r.CachePXAT(); pxat > 0 {
		until = min(until, pxat*int64(time.Millisecond))
	}
	return answer{read: start.UnixNano(), until: until, tracked: tracked, present: present, mark: mark}
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
