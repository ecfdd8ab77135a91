package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

//go:embed lease.lua
var leaseLua string

// leaseScript takes and gives back token leases on the buckets of
// rateScript (same key, same arithmetic, same clock).
var leaseScript = rueidis.NewLuaScript(bucketLua + leaseLua)

var _ store.Leaser = (*Store)(nil)

// Lease implements store.Leaser: one script run renews the holder's lease
// on the bucket at key. The key and arguments go out from a pooled buffer
// (scriptCall); the script's 7-value array reply is the one allocation a
// renewal costs here (rueidis reads an array reply into a new
// []RedisMessage).
func (s *Store) Lease(ctx context.Context, key []byte, req store.LeaseRequest) (store.LeaseGrant, error) {
	if req.NewSeq == 0 || req.Want < 0 || req.Use < 0 || req.Want > req.Rate.Burst || req.Use > req.Rate.Burst {
		return store.LeaseGrant{}, ErrInvalidRate
	}
	n, err := s.lease(ctx, key, req, req.NewSeq)
	if err != nil {
		return store.LeaseGrant{}, err
	}
	return store.LeaseGrant{
		OK:         n[0] == 1,
		Granted:    n[1],
		Kept:       n[2],
		Remaining:  n[3],
		Reset:      time.Duration(n[4]) * time.Microsecond,
		RetryAfter: time.Duration(n[5]) * time.Microsecond,
		Recorded:   n[6],
	}, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, key []byte, req store.LeaseRequest) (int64, error) {
	req.Want, req.Use = 0, 0
	n, err := s.lease(ctx, key, req, 0)
	if err != nil {
		return 0, err
	}
	return n[1], nil
}

// lease runs the lease script; newSeq 0 gives the lease back.
func (s *Store) lease(ctx context.Context, key []byte, req store.LeaseRequest, newSeq uint64) ([7]int64, error) {
	var n [7]int64
	capU, _, unit, rate, ok := units(req.Rate, 1)
	ttl := req.TTL.Microseconds()
	if !ok || req.Holder == "" || strings.ContainsRune(req.Holder, ' ') || ttl < 1 || req.Carry < 0 ||
		req.Seq >= 1<<53 || newSeq >= 1<<53 || req.Carry > req.Rate.Burst {
		return n, ErrInvalidRate
	}
	c := newScriptCall(key)
	c.int(capU)
	c.int(unit)
	c.int(rate)
	c.str("i:", req.Holder)
	c.uint(req.Seq)
	c.uint(newSeq)
	c.int(req.Carry)
	c.int(req.Want)
	c.int(req.Use)
	c.int(ttl)
	keys, args := c.build()
	vals, err := leaseScript.Exec(ctx, s.client, keys, args).ToArray()
	c.done(err)
	if err != nil {
		return n, wrapErr("ratelimit lease", err)
	}
	if len(vals) != len(n) {
		return n, fmt.Errorf("redis: ratelimit lease: script returned %d values, want %d", len(vals), len(n))
	}
	for i := range vals {
		if n[i], err = vals[i].AsInt64(); err != nil {
			return n, wrapErr("ratelimit lease", err)
		}
	}
	return n, nil
}
