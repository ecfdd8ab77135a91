// Package redis is the Redis implementation of the store interfaces, on
// rueidis (auto-pipelining, RESP3 client-side caching). It is the only
// package that imports rueidis. It runs on one server, on Redis Cluster and
// on a master found through Redis Sentinel: every key carries a hash tag,
// every script takes exactly one key and every command names keys of one
// hash slot, so Redis Cluster never answers CROSSSLOT.
//
// Rate limiting runs one Lua script per Take (ratelimit.lua, called with
// EVALSHA; rueidis resends it with EVAL when the server answers NOSCRIPT,
// e.g. after a restart or SCRIPT FLUSH). Each bucket is one key,
// "gatewayd:rl:{<bucket id>}", whose hash tag covers the whole id so the
// script touches a single cluster slot. The script answers with one
// integer, the bucket's level, from which Take derives its Result (see
// decodeTake), and its key goes out from a pooled buffer: a Take allocates
// nothing. Leases (ratelimit sync: lease) run
// lease.lua on the same key: a batch of tokens per call, recorded per
// holder in the bucket's hash, which ratelimit.lua honours. Revocations use
// the key layout documented in package store; with client-side caching on,
// IsRevoked reads through the rueidis cache, invalidated by the server, and
// keeps the answers by token id and subject so that CachedRevoked answers a
// repeated check from memory without allocating (see answers).
//
// Failures to reach Redis (refused or dropped connections, timeouts, a
// server that is loading or a cluster that is down) are returned wrapping
// store.ErrUnavailable.
//
// A silent server (paused, black-holed, busy in a script) needs more than
// deadlines. rueidis queues each connection's commands in a ring of 1024
// slots; an enqueue into a full ring waits for a free slot whatever its
// context says (rueidis issue #858), and a call whose context ends keeps
// its slot until the server answers. So the gateway and the auth service
// use the store behind store.Guarded (see Guard): its in-flight cap,
// max_in_flight, at most 1023, keeps every ring below full, and its
// runners let callers return at their deadline. The connection's liveness
// PING (Dialer.KeepAlive is its interval, ConnWriteTimeout its timeout)
// closes a silent connection within 1.5 × command_timeout, failing every
// call it held. Other rueidis settings were weighed and left alone:
// DisableAutoPipelining would bound each call by a connection deadline,
// but costs a pooled connection per call in flight and the pipelining the
// limiter relies on; a larger RingScaleEachConn only delays a full ring;
// MaxFlushDelay batches writes and the blocking pool serves blocking
// commands, which the gateway does not send.
package redis

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

// Store is a connection to Redis (one node, a cluster or a Sentinel-managed
// master) shared by every plugin and the auth service of a process.
type Store struct {
	client rueidis.Client
	cache  bool
	// answers holds the revocation answers of cached reads (nil without
	// client-side caching), invalidated with the rueidis cache.
	answers *answers
}

var _ store.Store = (*Store)(nil)

// ErrNotCluster is returned by New when cluster: true but the server is not
// a Redis Cluster node.
var ErrNotCluster = errors.New("redis: cluster: true, but the server is not a Redis Cluster node (cluster_enabled:0)")

// Options returns the rueidis options for cfg, every setting but TLS (New
// loads the certificate files, see config.RedisTLS.Config). With a
// sentinel: section the client asks the sentinels for the master; with
// several addresses it is a cluster client; with one address rueidis
// detects a cluster node and falls back to the single-server client
// otherwise.
func Options(cfg *config.Redis) rueidis.ClientOption {
	commandTimeout := orDefault(cfg.CommandTimeout, config.DefaultRedisCommandTimeout)
	dialer := net.Dialer{
		Timeout: orDefault(cfg.DialTimeout, config.DefaultRedisDialTimeout),
		// rueidis reads KeepAlive as the interval of its liveness check: a
		// connection that received no reply over one interval sends a PING
		// and is closed if that is not answered within command_timeout. A
		// quarter of command_timeout detects a silent server (paused,
		// black-holed, busy in a script) within 1.5 × command_timeout of
		// its last reply, commands in flight or not.
		KeepAlive: pingInterval(commandTimeout),
		// TCP keep-alive itself, which KeepAlive would otherwise set, stays
		// at the usual half minute.
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 30 * time.Second},
	}
	refresh := orDefault(cfg.TopologyRefresh, config.DefaultRedisTopologyRefresh)
	opt := rueidis.ClientOption{
		// A copy: ShuffleInit reorders it in place.
		InitAddress:         slices.Clone(cfg.Addrs),
		ShuffleInit:         true,
		Username:            cfg.Username,
		Password:            cfg.Password,
		ClientName:          cfg.ClientName,
		SelectDB:            cfg.DB,
		DisableCache:        !cfg.CacheEnabled(),
		CacheSizeEachConn:   cacheSize(cfg),
		ReadBufferEachConn:  bufferSize(cfg.ReadBufferSize),
		WriteBufferEachConn: bufferSize(cfg.WriteBufferSize),
		MaxFlushDelay:       cfg.MaxFlushDelay.D(),
		Dialer:              dialer,
		// How long the liveness PING of a connection may go unanswered
		// before the connection is closed: the dead-peer detector when a
		// node goes silent without a TCP reset. Closing it fails every
		// command it holds, drops its client-side cache and, for a
		// cluster, triggers a slot map refresh.
		ConnWriteTimeout: commandTimeout,
		ClusterOption:    rueidis.ClusterOption{ShardsRefreshInterval: refresh},
	}
	if s := cfg.Sentinel; s != nil {
		opt.InitAddress = slices.Clone(s.Addrs)
		opt.Sentinel = rueidis.SentinelOption{
			Dialer:     dialer,
			MasterSet:  s.MasterSet,
			Username:   s.Username,
			Password:   s.Password,
			ClientName: cfg.ClientName,
			// +switch-master events move the client at once; the periodic
			// check recovers from a missed event.
			TopologyRefreshInterval: refresh,
		}
	}
	switch {
	case cfg.CacheEnabled():
		// One pipelined connection per node (the cluster client's default
		// too): a write and the cache it invalidates then share a
		// connection, so the invalidation is read before the reply of the
		// command that follows the write (see fence). Slots and replicas
		// do not change this: every key of a slot is served by one master
		// and so by one connection.
		opt.PipelineMultiplex = -1
	case cfg.ConnectionsPerNode > 0:
		opt.PipelineMultiplex = bits.TrailingZeros(uint(cfg.ConnectionsPerNode))
	}
	return opt
}

// pingInterval is the liveness-check interval for command_timeout d: a
// quarter of it, between 50ms and 1s.
func pingInterval(d time.Duration) time.Duration {
	return min(max(d/4, 50*time.Millisecond), time.Second)
}

// GuardOptions returns the settings of the guard every call to the store
// goes through (store.Guarded): the in-flight cap and breaker of cfg, and
// a hold of twice command_timeout, by when the liveness check has closed a
// silent connection and failed the calls it held.
func GuardOptions(cfg *config.Redis) store.GuardOptions {
	return store.GuardOptions{
		MaxInFlight:     cfg.MaxInFlight,
		MaxRunners:      cfg.MaxConcurrentCalls,
		BreakerFailures: cfg.BreakerFailures,
		BreakerCooldown: cfg.BreakerCooldown.D(),
		Hold:            2 * orDefault(cfg.CommandTimeout, config.DefaultRedisCommandTimeout),
	}
}

// Guard returns s, and the auth store on its connection, behind one guard
// configured by cfg: the store plugins and the auth service use.
func Guard(s *Store, cfg *config.Redis) *store.Guarded {
	return store.NewGuarded(s, NewAuth(s), GuardOptions(cfg))
}

func orDefault(d config.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d.D()
}

// New connects to Redis. rueidis dials at once, so an unreachable server
// (or, with Sentinel, no sentinel knowing the master) is an error here.
func New(cfg *config.Redis) (*Store, error) {
	opt := Options(cfg)
	if cfg.TLS != nil {
		tc, err := cfg.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("redis: tls: %w", err)
		}
		opt.TLSConfig = tc
		if cfg.Sentinel != nil {
			opt.Sentinel.TLSConfig = tc
		}
	}
	var ans *answers
	if cfg.CacheEnabled() {
		// The revocation answers live as long as the rueidis cache entries
		// they come from: the callback runs in each connection's reader,
		// for every invalidation it reads, and with nil when the connection
		// closes (its whole cache is dropped) or the server flushes.
		ans = newAnswers(answersLimit(cfg))
		opt.OnInvalidations = ans.invalidate
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis: connect %s: %w", describe(cfg), err)
	}
	if cfg.Cluster && c.Mode() != rueidis.ClientModeCluster {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrNotCluster, config.RedactURLs(cfg.Addrs))
	}
	return &Store{client: c, cache: cfg.CacheEnabled(), answers: ans}, nil
}

// defaultCacheSize caps each connection's client-side cache when
// cache_size is 0. The revocation answers, not the client library's cache,
// answer repeated checks: a rueidis entry lives at most the caller's
// maxStale, as long as the answer copied from it, and a check past that
// goes to Redis whether or not the entry is still there (a plain GET of a
// tracked absent key, or a read through the cache of one whose entry has
// expired). So the cache only needs to hold the reads in flight; entries it
// evicts stay tracked by the server, whose invalidations reach the answers
// all the same (OnInvalidations sees every invalidation the connection
// reads). Its entries cost about 1KiB each in memory; the library's own
// default, 128MiB, let 1000 users' revocation keys hold 2–3MB twice over.
const defaultCacheSize = 256 << 10

// defaultAnswersLimit caps the revocation answers when cache_size is 0:
// the client library's default cap of one connection's cache.
const defaultAnswersLimit = rueidis.DefaultCacheBytes

// cacheSize is the cap of each connection's client-side cache.
func cacheSize(cfg *config.Redis) int {
	if cfg.CacheSize > 0 {
		return int(cfg.CacheSize)
	}
	return defaultCacheSize
}

// answersLimit is the memory cap of the revocation answers: cache_size
// when set, else the client library's default cap.
func answersLimit(cfg *config.Redis) int {
	if cfg.CacheSize > 0 {
		return int(cfg.CacheSize)
	}
	return defaultAnswersLimit
}

// describe names what New connects to, for errors, without any
// credentials written into an address.
func describe(cfg *config.Redis) string {
	if s := cfg.Sentinel; s != nil {
		return fmt.Sprintf("master set %q through sentinels %v", s.MasterSet, config.RedactURLs(s.Addrs))
	}
	return fmt.Sprintf("%v", config.RedactURLs(cfg.Addrs))
}

// Topology reports how the store reaches Redis: "cluster", "sentinel" or
// "standalone".
func (s *Store) Topology() string { return string(s.client.Mode()) }

// Client returns the underlying rueidis client, for the other Redis-backed
// stores of this package.
func (s *Store) Client() rueidis.Client { return s.client }

// Ping checks that Redis answers. On a cluster it pings every node the
// client routes to, at once, and succeeds when one answers: the cluster is
// reachable even while one shard fails over (its keys then follow each
// plugin's on_store_error), and a dead or black-holed node cannot stall
// the check.
func (s *Store) Ping(ctx context.Context) error {
	if s.client.Mode() != rueidis.ClientModeCluster {
		if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
			return wrapErr("ping", err)
		}
		return nil
	}
	nodes := s.client.Nodes()
	if len(nodes) == 0 {
		return wrapErr("ping", rueidis.ErrNoSlot)
	}
	// Buffered: the pings still running after the first answer finish
	// (within ctx) without a reader.
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- n.Do(ctx, n.B().Ping().Build()).Error() }()
	}
	var first error
	for range nodes {
		err := <-errs
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return wrapErr("ping", first)
}

// Close closes every connection.
func (s *Store) Close() error {
	s.client.Close()
	return nil
}

// fence makes a revocation written by this process visible to its own next
// IsRevoked. Redis pushes the invalidation of a cached key on the
// connection that cached it, after the reply of the command that changed
// it; a read of the same key, on the same connection, is answered after
// that push, so once it returns the stale entry is gone. If the fence
// fails the connection is gone, and rueidis drops its cache with it.
func (s *Store) fence(ctx context.Context, key string) {
	if s.cache {
		_ = s.client.Do(ctx, s.client.B().Exists().Key(key).Build()).Error()
	}
}

// unavailableReplies are the error replies of a server that cannot serve
// now (rather than of a wrong command).
var unavailableReplies = []string{
	"LOADING", "BUSY", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "NOREPLICAS", "MISCONF",
}

// wrapErr adds op to err and, unless err is an error reply about the
// command itself, wraps store.ErrUnavailable so callers can tell an outage
// (connection refused or lost, deadline exceeded) from a bug.
func wrapErr(op string, err error) error {
	if re, ok := rueidis.IsRedisErr(err); ok && !isUnavailableReply(re.Error()) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
}

func isUnavailableReply(msg string) bool {
	for _, p := range unavailableReplies {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// defaultBufferSize sizes each connection's read and write buffers when
// read_buffer_size or write_buffer_size is 0: a pipelined batch of a few
// hundred commands or replies (the guard's in-flight cap) of the gateway's
// size fits, where the client library's default, 512KiB each, was mostly
// unused memory per connection. Larger commands and replies go through
// whole, in several reads or writes.
const defaultBufferSize = 64 << 10

func bufferSize(n config.Size) int {
	if n > 0 {
		return int(n)
	}
	return defaultBufferSize
}
