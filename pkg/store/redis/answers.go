package redis

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// answers keeps the revocation keys IsRevoked read through the client-side
// cache, by token id and by subject, so that a repeated check is answered
// without building keys, without a rueidis call and without allocating
// (CachedRevoked). It follows the rueidis cache it sits on:
//
//   - an entry is stored only from a read that went through the client-side
//     cache, so the server tracks its key on the connection that read it;
//   - the server's invalidation of a key (OnInvalidations) deletes its
//     entry, and a flush or a closed connection deletes every entry, in the
//     connection's reader before the reply of the next command on it, so
//     the fence after a revocation clears this layer too;
//   - an entry is served at most maxStale (the caller's) after the read
//     began, and never past the expiry rueidis knew for the key;
//   - a read that raced with an invalidation of its shard is not stored
//     (each shard counts its invalidations; a read stores its answer only if
//     the count did not move while it ran).
//
// An answer past maxStale is not served, but an absent key's entry stays
// (up to retrackAfter after the key was last read through the cache): it
// shows that the server still tracks the key for this process, since every
// change of the key since would have deleted it. Such a key is read again
// with a plain GET (see IsRevoked), which costs a few allocations where a
// read through the client-side cache costs about 25.
//
// Memory is bounded by limit bytes (keys plus a fixed overhead per entry);
// entries neither servable nor re-readable are swept as a shard grows.
type answers struct {
	seed   maphash.Seed
	limit  int // bytes per shard
	shards [answerShards]answerShard
}

const answerShards = 32

// answerOverhead approximates the bytes an entry costs beyond its id: the
// map slot, the string header and the answer it points to.
const answerOverhead = 96

type answerShard struct {
	mu    sync.RWMutex
	epoch atomic.Uint64 // invalidations seen; bumped before the delete
	// Values are pointers so that a re-read updates its entry in place,
	// without allocating the map key again.
	jtis  map[string]*answer
	subs  map[string]*answer
	bytes int
	swept int // entries after the last sweep
	_     [64]byte
}

// answer is what Redis held for one key.
type answer struct {
	read    int64 // unix ns when the read began
	until   int64 // unix ns past which the answer is never served
	tracked int64 // unix ns when the last read through the cache began
	present bool  // the key existed
	mark    int64 // a revoke-all mark's value
}

// retrackAfter bounds how long an absent key is re-read with plain GETs
// after its last read through the client-side cache; the next re-read goes
// through the cache again, which re-registers the key's tracking with the
// server. While the connection lives the server keeps tracking the key
// until it changes (and then invalidates it), so this only bounds how long
// an invalidation lost some unforeseen way could leave answers refreshed
// every cache_ttl rather than at once.
const retrackAfter = time.Minute

// tracked reports whether id (a token id when jti, else a subject) has an
// entry of an absent key read through the cache less than retrackAfter
// before now, and returns when that read began. Called after epochs, so
// that an invalidation between the two stops the answer being stored.
func (a *answers) tracked(jti bool, id []byte, now int64) (int64, bool) {
	sh := a.shard(id)
	sh.mu.RLock()
	m := sh.subs
	if jti {
		m = sh.jtis
	}
	p := m[string(id)]
	var v answer
	if p != nil {
		v = *p
	}
	sh.mu.RUnlock()
	if p == nil || v.present || now-v.tracked >= int64(retrackAfter) {
		return 0, false
	}
	return v.tracked, true
}

// newAnswers returns a cache of at most limit bytes in all.
func newAnswers(limit int) *answers {
	a := &answers{seed: maphash.MakeSeed(), limit: max(limit/answerShards, 1<<10)}
	for i := range a.shards {
		a.shards[i].jtis = make(map[string]*answer)
		a.shards[i].subs = make(map[string]*answer)
	}
	return a
}

func (a *answers) shard(id []byte) *answerShard {
	return &a.shards[maphash.Bytes(a.seed, id)%answerShards]
}

func (a *answers) shardOf(id string) *answerShard {
	return &a.shards[maphash.String(a.seed, id)%answerShards]
}

// lookup returns the answer for id (a token id when jti, else a subject)
// if it is at most maxStale old at now.
func (a *answers) lookup(jti bool, id []byte, now int64, maxStale time.Duration) (answer, bool) {
	sh := a.shard(id)
	sh.mu.RLock()
	m := sh.subs
	if jti {
		m = sh.jtis
	}
	p := m[string(id)]
	var v answer
	if p != nil {
		v = *p
	}
	sh.mu.RUnlock()
	if p == nil || now >= v.until || now-v.read > int64(maxStale) {
		return answer{}, false
	}
	return v, true
}

// epochs returns the invalidation counts of the shards of jti and subject,
// read before the read that may store them.
func (a *answers) epochs(jti, subject []byte) (uint64, uint64) {
	var e1, e2 uint64
	if len(jti) > 0 {
		e1 = a.shard(jti).epoch.Load()
	}
	if len(subject) > 0 {
		e2 = a.shard(subject).epoch.Load()
	}
	return e1, e2
}

// store records v for id unless the shard saw an invalidation since epoch.
func (a *answers) store(jti bool, id []byte, epoch uint64, v answer) {
	sh := a.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch.Load() != epoch {
		return
	}
	m := sh.subs
	if jti {
		m = sh.jtis
	}
	if p := m[string(id)]; p != nil {
		*p = v
		return
	}
	sh.bytes += len(id) + answerOverhead
	p := new(answer)
	*p = v
	m[string(id)] = p
	if n := len(sh.jtis) + len(sh.subs); sh.bytes > a.limit || n > 2*sh.swept+64 {
		sh.sweep(v.read, a.limit)
	}
}

// sweep deletes the entries that can be neither served nor re-read with a
// plain GET, then arbitrary ones while the shard is over limit bytes.
// Called with mu held.
func (sh *answerShard) sweep(now int64, limit int) {
	for _, m := range [2]map[string]*answer{sh.jtis, sh.subs} {
		for k, v := range m {
			if now >= v.until && (v.present || now-v.tracked >= int64(retrackAfter)) {
				delete(m, k)
				sh.bytes -= len(k) + answerOverhead
			}
		}
	}
	for _, m := range [2]map[string]*answer{sh.jtis, sh.subs} {
		for k := range m {
			if sh.bytes <= limit {
				break
			}
			delete(m, k)
			sh.bytes -= len(k) + answerOverhead
		}
	}
	sh.swept = len(sh.jtis) + len(sh.subs)
}

// invalidate is the client's OnInvalidations callback: keys the server
// reports changed, or nil when every tracked key must be dropped (a flush,
// a closed connection).
func (a *answers) invalidate(keys []rueidis.RedisMessage) {
	if keys == nil {
		for i := range a.shards {
			sh := &a.shards[i]
			sh.epoch.Add(1)
			sh.mu.Lock()
			clear(sh.jtis)
			clear(sh.subs)
			sh.bytes, sh.swept = 0, 0
			sh.mu.Unlock()
		}
		return
	}
	for i := range keys {
		key, err := keys[i].ToString()
		if err != nil {
			continue
		}
		jti := true
		id, ok := strings.CutPrefix(key, RevokedKeyPrefix)
		if !ok {
			jti = false
			if id, ok = strings.CutPrefix(key, RevokeAllKeyPrefix); !ok {
				continue
			}
		}
		if id, ok = strings.CutSuffix(id, "}"); !ok {
			continue
		}
		sh := a.shardOf(id)
		sh.epoch.Add(1)
		sh.mu.Lock()
		m := sh.subs
		if jti {
			m = sh.jtis
		}
		if _, ok := m[id]; ok {
			delete(m, id)
			sh.bytes -= len(id) + answerOverhead
		}
		sh.mu.Unlock()
	}
}

// len returns the number of entries, for tests.
func (a *answers) len() int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.RLock()
		n += len(sh.jtis) + len(sh.subs)
		sh.mu.RUnlock()
	}
	return n
}
