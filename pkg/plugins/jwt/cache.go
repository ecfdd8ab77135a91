package jwt

import (
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
)

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 64

// entry is what a verified token said, normalised into what the
// identity record holds. It is immutable once stored: requests share its
// roles, scopes and headers. A cache holds one per token, so it keeps its
// own bytes in one buffer, shares its roles and scopes with the entries
// that have the same ones, and keeps nothing of the parsed token.
type entry struct {
	// prov is the provider whose key verified the token.
	prov *provider
	// buf holds the subject, the jti and the values of headers.
	buf []byte
	// sets are the roles and scopes (nil when there are none).
	sets *claimSets
	// headers are the forwarded claims present in the token, in the order
	// of the plugin's forwards. Their names are the plugin's; their values
	// slice buf. The headers of the other forwards are absent from the
	// token and removed from the request.
	headers []reqctx.Header
	// subEnd and jtiEnd are where the subject and the jti end in buf.
	subEnd, jtiEnd int
	iatMs          int64
	exp            int64 // unix seconds
	// nbf is the not-before time in unix ns (0 when absent).
	nbf int64
	// deadline (unix ns) is when the entry stops being usable: the token's
	// exp plus leeway, or the cache ttl after it was verified, if sooner.
	deadline int64
	// gen is the provider's key-set generation the signature was checked
	// against.
	gen uint64
}

func (e *entry) subject() []byte { return e.buf[:e.subEnd] }

func (e *entry) jti() []byte { return e.buf[e.subEnd:e.jtiEnd] }

// claimSets are the roles and scopes of a token, each nil when empty. Their
// strings are substrings of one string.
type claimSets struct {
	roles, scopes []string
}

// maxSharedSets bounds the distinct role and scope sets a plugin shares
// between its entries; a token with another set gets its own copy.
const maxSharedSets = 1024

// setTable shares role and scope sets between entries: most tokens carry
// one of a few sets (every user with the same groups), and a cache holds
// many tokens.
type setTable struct {
	mu sync.Mutex
	m  map[string]*claimSets // by setsKey
}

// get returns sets equal to roles and scopes, nil when both are empty. The
// sets are copies: they keep nothing of the claims roles and scopes point
// into.
func (t *setTable) get(roles, scopes []string) *claimSets {
	if len(roles)+len(scopes) == 0 {
		return nil
	}
	var scratch [256]byte
	key := setsKey(scratch[:0], roles, scopes)
	t.mu.Lock()
	defer t.mu.Unlock()
	if cs := t.m[string(key)]; cs != nil {
		return cs
	}
	cs := newClaimSets(roles, scopes)
	if len(t.m) < maxSharedSets {
		if t.m == nil {
			t.m = map[string]*claimSets{}
		}
		t.m[string(key)] = cs
	}
	return cs
}

// setsKey appends to dst a spelling of roles and scopes that no other pair
// has: each count and length precedes what it counts.
func setsKey(dst []byte, roles, scopes []string) []byte {
	for _, set := range [...][]string{roles, scopes} {
		dst = binary.AppendUvarint(dst, uint64(len(set)))
		for _, s := range set {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	return dst
}

// newClaimSets copies roles and scopes into one string and one slice.
func newClaimSets(roles, scopes []string) *claimSets {
	n := 0
	for _, set := range [...][]string{roles, scopes} {
		for _, s := range set {
			n += len(s)
		}
	}
	var b strings.Builder
	b.Grow(n)
	all := make([]string, 0, len(roles)+len(scopes))
	for _, set := range [...][]string{roles, scopes} {
		for _, s := range set {
			b.WriteString(s)
			all = append(all, s)
		}
	}
	joined := b.String()
	for i, s := range all {
		all[i], joined = joined[:len(s)], joined[len(s):]
	}
	cs := &claimSets{}
	nr := len(roles)
	if nr > 0 {
		cs.roles = all[:nr:nr]
	}
	if len(all) > nr {
		cs.scopes = all[nr:]
	}
	return cs
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
