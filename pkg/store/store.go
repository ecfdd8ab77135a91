// Package store defines the small interfaces for state the gateway shares
// between instances: token buckets and token revocations. Two
// implementations pass one conformance suite (storetest): store/redis and
// store/memory. This package imports neither fasthttp nor rueidis.
//
// Revocation data layout (shared by the blacklist plugin and the auth
// service, which both go through Revocations):
//
//   - a revoked access token: key "gatewayd:revoked:{<jti>}", value "1",
//     expiring when the token does;
//   - a user's revoke-all mark: key "gatewayd:revoke-all:{<sub>}", value the
//     mark in unix milliseconds; a token is revoked when its iat (ms) is at
//     or before the mark. The mark expires after the longest token lifetime.
//     Tokens carry whole-second iat, so the auth service sets the mark to
//     the last millisecond of the second of the logout-all (covering every
//     token issued in it) and answers only once that second is over: a token
//     issued after the logout-all has a later second and is never revoked.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps failures to reach the store.
var ErrUnavailable = errors.New("store unavailable")

// Rate is a token bucket's shape: Limit tokens are added per Period, up to
// Burst tokens.
type Rate struct {
	Limit  int64
	Period time.Duration
	Burst  int64
}

// Result is the outcome of one Take.
type Result struct {
	Allowed bool
	// Remaining is the whole tokens left after this take.
	Remaining int64
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, for a rejection, the time until cost tokens are
	// available; 0 when allowed.
	RetryAfter time.Duration
}

// Limiter takes tokens from buckets.
type Limiter interface {
	// Take refills the bucket at key and takes cost tokens if it holds them,
	// atomically. key is only read during the call.
	Take(ctx context.Context, key []byte, rate Rate, cost int64) (Result, error)
}

// Revocations records and checks revoked tokens.
type Revocations interface {
	// Revoke marks the token jti as revoked until it expires at until.
	Revoke(ctx context.Context, jti string, until time.Time) error
	// RevokeAll revokes every token of subject issued at or before at; the
	// mark is kept for ttl (the longest token lifetime).
	RevokeAll(ctx context.Context, subject string, at time.Time, ttl time.Duration) error
	// IsRevoked reports whether a token is revoked: its jti is revoked or its
	// iat (unix ms) is at or before the subject's mark. A store with a
	// client-side cache may answer from it when the entry is at most maxStale
	// old (server-side invalidation usually makes it fresher). Arguments are
	// only read during the call.
	IsRevoked(ctx context.Context, jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (bool, error)
}

// CachedRevocations is implemented by stores that keep the revocation
// answers of recent reads in process (store/redis with client-side
// caching). CachedRevoked answers IsRevoked from that memory alone: no I/O,
// no blocking, no allocation. ok is false when it holds no answer of at most
// maxStale for a key it needs; the caller then calls IsRevoked. An answer
// it gives is one IsRevoked could have given.
type CachedRevocations interface {
	CachedRevoked(jti, subject []byte, issuedAtMs int64, maxStale time.Duration) (revoked, ok bool)
}

// Store is the whole shared state of a gateway.
type Store interface {
	Limiter
	Revocations
	// Ping checks the store is reachable (readiness).
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}

// Local is implemented by in-process stores whose calls never block on I/O;
// callers may skip per-call deadlines (and their allocation) for them.
type Local interface {
	Local()
}

// LeaseRequest asks a bucket for a lease: a batch of tokens its holder
// admits from locally (ratelimit sync: lease). A holder has at most one
// lease per bucket; each request renews it under a new number, keeping the
// holder's unused tokens and adding the grant.
type LeaseRequest struct {
	// Rate is the bucket's shape, as for Take.
	Rate Rate
	// Holder names the lease holder: one per limiter, unique across the
	// processes sharing the store. It has no spaces.
	Holder string
	// Seq is the number of the lease the holder has, 0 for none.
	Seq uint64
	// NewSeq is the number of the renewed lease, larger than any number
	// the holder used before. Release ignores it.
	NewSeq uint64
	// Carry is how many tokens of lease Seq the holder has not used.
	Carry int64
	// Want is how many tokens to add to the lease, at most Burst.
	Want int64
	// Use is how many tokens, of Carry first and then of the grant, the
	// holder uses at once (a request waiting for them): the grant is all
	// or nothing with respect to them.
	Use int64
	// TTL is how long the store keeps the lease's record; tokens given
	// back after it are not credited.
	TTL time.Duration
}

// LeaseGrant is the answer to a LeaseRequest.
type LeaseGrant struct {
	// OK reports that the tokens to use at once were there: the grant
	// covers them. When false nothing was granted.
	OK bool
	// Granted is how many tokens were added to the lease.
	Granted int64
	// Kept is how many tokens of Carry the lease still records: the
	// holder keeps min(its unused tokens, Kept) (fewer than Carry when the
	// store lost or expired the record).
	Kept int64
	// Remaining is the whole tokens left in the bucket.
	Remaining int64
	// Reset is the time until the bucket is full again.
	Reset time.Duration
	// RetryAfter is, when !OK, the time until the tokens to use at once
	// are available.
	RetryAfter time.Duration
	// Recorded is how many tokens the holder's lease now records (an upper
	// bound of its unused tokens); 0 means the store keeps no lease.
	Recorded int64
}

// Leaser is a Limiter whose buckets can also be leased from.
type Leaser interface {
	Limiter
	// Lease renews the holder's lease on the bucket at key, taking up to
	// Want tokens (and at least what Use needs, or none), atomically with
	// Take's arithmetic on the same bucket. key is only read during the
	// call.
	Lease(ctx context.Context, key []byte, req LeaseRequest) (LeaseGrant, error)
	// Release gives back req.Carry unused tokens of lease req.Seq and ends
	// it. Tokens are credited at most once, only while req.Seq is the
	// holder's recorded lease, and never beyond the burst; it returns how
	// many were credited.
	Release(ctx context.Context, key []byte, req LeaseRequest) (int64, error)
}

// ErrLeasesUnsupported is returned by Guarded's lease calls when the store
// behind it cannot lease (the in-process store).
var ErrLeasesUnsupported = errors.New("store: leases are not supported by this store")

// LeaserOf returns l as a Leaser when its store can lease: a Leaser, or a
// Guarded whose store is one.
func LeaserOf(l Limiter) (Leaser, bool) {
	if g, ok := l.(*Guarded); ok {
		if _, ok := g.inner.(Leaser); !ok {
			return nil, false
		}
		return g, true
	}
	lr, ok := l.(Leaser)
	return lr, ok
}
