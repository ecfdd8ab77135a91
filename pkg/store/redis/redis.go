// Package redis is the Redis implementation of the store interfaces, on
// rueidis (auto-pipelining, RESP3 client-side caching). It is the only
// package that imports rueidis.
//
// Rate limiting runs one Lua script per Take (ratelimit.lua, called with
// EVALSHA; rueidis resends it with EVAL when the server answers NOSCRIPT,
// e.g. after a restart or SCRIPT FLUSH). Each bucket is one key,
// "gatewayd:rl:{<bucket id>}", whose hash tag covers the whole id so the
// script touches a single cluster slot. Revocations use the key layout
// documented in package store; with client-side caching on, IsRevoked is
// served from the rueidis cache and invalidated by the server.
//
// Failures to reach Redis (refused or dropped connections, timeouts, a
// server that is loading or a cluster that is down) are returned wrapping
// store.ErrUnavailable.
package redis

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

// Store is a connection to Redis (one node or a cluster) shared by every
// plugin and the auth service of a process.
type Store struct {
	client rueidis.Client
	cache  bool
}

var _ store.Store = (*Store)(nil)

// Options returns the rueidis options for cfg.
func Options(cfg *config.Redis) rueidis.ClientOption {
	dial := cfg.DialTimeout.D()
	if dial <= 0 {
		dial = 2 * time.Second
	}
	opt := rueidis.ClientOption{
		InitAddress:      cfg.Addrs,
		Username:         cfg.Username,
		Password:         cfg.Password,
		SelectDB:         cfg.DB,
		DisableCache:     !cfg.CacheEnabled(),
		Dialer:           net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second},
		ConnWriteTimeout: dial,
	}
	if cfg.CacheEnabled() {
		// One pipelined connection per node (the cluster client's default
		// too): a write and the cache it invalidates then share a
		// connection, so the invalidation is read before the reply of the
		// command that follows the write (see fence).
		opt.PipelineMultiplex = -1
	}
	return opt
}

// New connects to Redis. rueidis dials at once, so an unreachable server is
// an error here.
func New(cfg *config.Redis) (*Store, error) {
	c, err := rueidis.NewClient(Options(cfg))
	if err != nil {
		return nil, fmt.Errorf("redis: connect %v: %w", cfg.Addrs, err)
	}
	return &Store{client: c, cache: cfg.CacheEnabled()}, nil
}

// Client returns the underlying rueidis client, for the other Redis-backed
// stores of this package.
func (s *Store) Client() rueidis.Client { return s.client }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
		return wrapErr("ping", err)
	}
	return nil
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
