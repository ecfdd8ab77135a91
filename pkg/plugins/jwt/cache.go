package jwt

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
)

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 64

// entry is what a verified token said, normalised into what the
// identity record holds. It is immutable once stored: requests share its
// roles, scopes and headers.
type entry struct {
	// prov is the provider whose key verified the token.
	prov          *provider
	subject, jti  []byte
	roles, scopes []string
	// headers are the forwarded claims present in the token; absent are the
	// forward_claims headers it has no value for.
	headers []reqctx.Header
	absent  [][]byte
	iatMs   int64
	exp     int64 // unix seconds
	// nbf is the not-before time in unix ns (0 when absent).
	nbf int64
	// deadline (unix ns) is when the entry stops being usable: the token's
	// exp plus leeway, or the cache ttl after it was verified, if sooner.
	deadline int64
	// gen is the provider's key-set generation the signature was checked
	// against.
	gen uint64
}

// tokenCache maps the exact bytes of verified tokens to what they said.
// Lookups compare the whole token (it is the map key), so two tokens never
// share an entry; failures are never stored. Each shard's map is replaced,
// never modified, so a lookup is one atomic load and takes no lock: many
// connections presenting the same token do not contend. Writers copy the
// (small, bounded) shard map under the shard's mutex.
type tokenCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	m  atomic.Pointer[map[string]*entry]
	mu sync.Mutex // serialises writers
	_  [48]byte   // keep shards on separate cache lines
}

// newTokenCache returns a cache holding about size entries.
func newTokenCache(size int) *tokenCache {
	c := &tokenCache{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m.Store(&map[string]*entry{})
	}
	return c
}

// shard picks a shard from the token's last bytes: they are signature
// bytes, uniformly distributed for the verified tokens the cache holds
// (lookups of other tokens just miss).
func (c *tokenCache) shard(tok []byte) *cacheShard {
	var x uint64
	if n := len(tok); n >= 8 {
		x = binary.LittleEndian.Uint64(tok[n-8:])
	} else {
		for _, b := range tok {
			x = x<<8 | uint64(b)
		}
	}
	return &c.shards[(x*0x9E3779B97F4A7C15)>>(64-6)]
}

// get returns the entry stored for tok, or nil. It does not allocate.
func (c *tokenCache) get(tok []byte) *entry {
	return (*c.shard(tok).m.Load())[string(tok)]
}

// put stores e for tok. When the shard is full it first drops entries
// past their deadline, then arbitrary ones.
func (c *tokenCache) put(tok []byte, e *entry, now int64) {
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	next := make(map[string]*entry, min(len(old)+1, c.perShard))
	for k, v := range old {
		if now < v.deadline {
			next[k] = v
		}
	}
	for k := range next {
		if len(next) < c.perShard {
			break
		}
		delete(next, k)
	}
	next[string(tok)] = e
	s.m.Store(&next)
}

// remove drops tok's entry if it is still e.
func (c *tokenCache) remove(tok []byte, e *entry) {
	s := c.shard(tok)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if old[string(tok)] != e {
		return
	}
	next := make(map[string]*entry, len(old))
	for k, v := range old {
		if v != e {
			next[k] = v
		}
	}
	s.m.Store(&next)
}

// len returns the number of entries.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		n += len(*c.shards[i].m.Load())
	}
	return n
}
