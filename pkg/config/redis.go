package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults of the redis: section, applied by the store when a setting is
// left out (or written as 0).
const (
	DefaultRedisDialTimeout     = 2 * time.Second
	DefaultRedisCommandTimeout  = 2 * time.Second
	DefaultRedisTopologyRefresh = 5 * time.Second
	// MaxRedisConnectionsPerNode is the most pipelined connections the
	// client keeps to one Redis node (rueidis allows 2^8).
	MaxRedisConnectionsPerNode = 256
	// MaxRedisInFlight is the largest max_in_flight: below the 1024
	// commands the client library queues per connection, so that a call
	// never waits for room in that queue.
	MaxRedisInFlight = 1023
	// DefaultRedisMaxInFlight is max_in_flight's default (the store
	// guard's, store.DefaultMaxInFlight).
	DefaultRedisMaxInFlight = 512
)

// Redis configures the shared store. When the redis: section is absent the
// gateway runs on an in-process store (one instance only).
//
// The topology follows from the settings: one address is a single server
// (or, detected, any node of a Redis Cluster); several addresses are seed
// nodes of a Redis Cluster; cluster: true insists on a cluster; a sentinel:
// section finds the master of a replicated set through Redis Sentinel, and
// then addrs stays empty.
type Redis struct {
	// Addrs are seed addresses; more than one selects Redis Cluster.
	Addrs []string `yaml:"addrs"`
	// Cluster makes a server that is not a Redis Cluster node an error at
	// startup instead of a fallback to the single-server client.
	Cluster bool `yaml:"cluster"`
	// Sentinel finds the master through Redis Sentinel.
	Sentinel *RedisSentinel `yaml:"sentinel"`
	// Username and Password authenticate to the data nodes (ACL user, or
	// requirepass with an empty Username).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// DB selects a database; Redis Cluster has only database 0.
	DB int `yaml:"db"`
	// ClientName is set on every connection (CLIENT SETNAME), to find the
	// gateway's connections in CLIENT LIST.
	ClientName string `yaml:"client_name"`
	// ClientSideCache serves revocation checks from the RESP3 client-side
	// cache, invalidated by the server (default true).
	ClientSideCache *bool `yaml:"client_side_cache"`
	// CacheSize caps the client-side cache of each connection and the
	// revocation answers kept from it (0: 256KiB per connection, whose
	// entries the answers make redundant once read, and 128MiB for the
	// answers); entries live at most the blacklist's cache_ttl.
	CacheSize Size `yaml:"cache_size"`
	// TLS, when present, encrypts every connection (data nodes and
	// sentinels).
	TLS *RedisTLS `yaml:"tls"`
	// DialTimeout bounds establishing a connection, TLS and AUTH included
	// (default 2s).
	DialTimeout Duration `yaml:"dial_timeout"`
	// CommandTimeout is how long a connection's liveness PING may go
	// unanswered before the connection is declared dead, closed and
	// redialled (default 2s). A connection that received no reply for a
	// quarter of it (at most 1s) sends that PING, so a silent server is
	// detected within 1.5 × command_timeout. Each request waits at most its
	// plugin's store_timeout whatever this is.
	CommandTimeout Duration `yaml:"command_timeout"`
	// ConnectionsPerNode is the number of pipelined connections to each
	// node, a power of two (0: one per node with the client-side cache,
	// else the client library's default). More than one needs
	// client_side_cache: false.
	ConnectionsPerNode int `yaml:"connections_per_node"`
	// ReadBufferSize and WriteBufferSize size each connection's buffers
	// (0: 64KiB each, rather than the client library's 512KiB; larger
	// commands and replies still go through, in several reads or writes).
	ReadBufferSize  Size `yaml:"read_buffer_size"`
	WriteBufferSize Size `yaml:"write_buffer_size"`
	// MaxFlushDelay lets the writer wait up to this long to batch more
	// commands into one write: less CPU on the gateway and on Redis, a
	// little more latency (default 0).
	MaxFlushDelay Duration `yaml:"max_flush_delay"`
	// MaxInFlight caps the store calls in flight at once, counted until
	// Redis answers them (default 512, at most 1023: below the 1024
	// commands a connection queues). A call over the cap fails at once,
	// answered per its plugin's on_store_error.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxConcurrentCalls caps the store calls running at once, each on a
	// goroutine of its own for about one round trip (default 64, at most
	// max_in_flight); calls beyond it wait for one within their
	// store_timeout. Store calls per second top out near this divided by
	// the round-trip time: raise it for a distant Redis.
	MaxConcurrentCalls int `yaml:"max_concurrent_calls"`
	// BreakerFailures is how many store calls failing in a row (timeouts,
	// calls over max_in_flight, refused or lost connections), with none
	// succeeding for 100ms, open the circuit breaker: calls then fail at
	// once (default 5).
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerCooldown is how long the breaker stays open before one probe
	// call goes through; its success closes the breaker (default 1s).
	BreakerCooldown Duration `yaml:"breaker_cooldown"`
	// TopologyRefresh is how often the cluster slot map or the sentinel
	// master is re-read in the background (default 5s); failures and MOVED
	// replies also trigger a refresh at once.
	TopologyRefresh Duration `yaml:"topology_refresh"`
	Meta            Meta     `yaml:"-"`
}

// RedisSentinel locates the master of a replicated set through Redis
// Sentinel.
type RedisSentinel struct {
	// MasterSet is the name the sentinels monitor (sentinel monitor <name>).
	MasterSet string `yaml:"master_set"`
	// Addrs are the sentinels, host:port.
	Addrs []string `yaml:"addrs"`
	// Username and Password authenticate to the sentinels.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Meta     Meta   `yaml:"-"`
}

// RedisTLS configures TLS to Redis. Without ca_file the system roots verify
// the server; cert_file and key_file present a client certificate.
type RedisTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the server's certificate (default:
	// the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	Meta               Meta `yaml:"-"`
}

// CacheEnabled reports whether client-side caching is on (default true).
func (r *Redis) CacheEnabled() bool { return r.ClientSideCache == nil || *r.ClientSideCache }

// IsCluster reports whether the settings select Redis Cluster explicitly
// (cluster: true or several addresses). A single address may still turn out
// to be a cluster node; the client detects it.
func (r *Redis) IsCluster() bool { return r.Sentinel == nil && (r.Cluster || len(r.Addrs) > 1) }

// Validate checks the section on its own and returns every mistake as an
// *Error positioned in file (for programs that decode a redis: section
// outside a gateway.yaml, such as authd).
func (r *Redis) Validate(file string) error {
	v := &validator{file: file}
	r.validate(v)
	return v.errs.err()
}

// ErrNoCertificate is returned by RedisTLS.Config for a ca_file without a
// PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate found")

// Config loads the files and returns the TLS configuration.
func (t *RedisTLS) Config() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := loadCA(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: %w", path, ErrNoCertificate)
	}
	return pool, nil
}

// validate reports every mistake of the section to v.
func (r *Redis) validate(v *validator) {
	m := r.Meta
	if r.Sentinel != nil {
		if len(r.Addrs) > 0 {
			v.at(m.Pos("addrs"), "redis.addrs", "must be empty with sentinel: the master is discovered; list the sentinels in sentinel.addrs")
		}
		if r.Cluster {
			v.at(m.Pos("cluster"), "redis.cluster", "cluster and sentinel exclude each other: Redis Cluster fails over by itself")
		}
		r.Sentinel.validate(v)
	} else {
		if len(r.Addrs) == 0 {
			v.at(m.Pos("addrs"), "redis.addrs", "at least one address is required (host:port)")
		}
		v.addrs(m.Pos("addrs"), "redis.addrs", r.Addrs)
	}
	if r.DB < 0 {
		v.at(m.Pos("db"), "redis.db", "must not be negative")
	} else if r.DB != 0 && r.IsCluster() {
		v.at(m.Pos("db"), "redis.db", "Redis Cluster has only database 0, got %d", r.DB)
	}
	if r.Username != "" && r.Password == "" {
		v.at(m.Pos("username"), "redis.username", "needs a password")
	}
	if strings.ContainsAny(r.ClientName, " \t\r\n") {
		v.at(m.Pos("client_name"), "redis.client_name", "must not contain spaces, got %q", r.ClientName)
	}
	if n := r.ConnectionsPerNode; n != 0 {
		switch {
		case n < 1 || n > MaxRedisConnectionsPerNode || bits.OnesCount(uint(n)) != 1:
			v.at(m.Pos("connections_per_node"), "redis.connections_per_node", "must be a power of two between 1 and %d, got %d", MaxRedisConnectionsPerNode, n)
		case n > 1 && r.CacheEnabled():
			v.at(m.Pos("connections_per_node"), "redis.connections_per_node",
				"more than one connection per node needs client_side_cache: false (with the cache, one connection per node keeps a logout visible to the next request of the instance that served it)")
		}
	}
	for _, f := range []struct {
		key  string
		size Size
	}{{"read_buffer_size", r.ReadBufferSize}, {"write_buffer_size", r.WriteBufferSize}} {
		if f.size != 0 && f.size < 1<<10 {
			v.at(m.Pos(f.key), "redis."+f.key, "must be at least 1KiB, got %s", FormatSize(int64(f.size)))
		}
	}
	if r.CacheSize != 0 && r.CacheSize < 1<<10 {
		v.at(m.Pos("cache_size"), "redis.cache_size", "must be at least 1KiB, got %s", FormatSize(int64(r.CacheSize)))
	}
	for _, f := range []struct {
		key string
		d   Duration
		min time.Duration
	}{
		{"dial_timeout", r.DialTimeout, time.Millisecond},
		{"command_timeout", r.CommandTimeout, 10 * time.Millisecond},
		{"topology_refresh", r.TopologyRefresh, 100 * time.Millisecond},
	} {
		if m.Has(f.key) && f.d != 0 && f.d.D() < f.min {
			v.at(m.Pos(f.key), "redis."+f.key, "must be at least %v (or 0 for the default), got %v", f.min, f.d)
		}
	}
	if n := r.MaxInFlight; n < 0 || n > MaxRedisInFlight {
		v.at(m.Pos("max_in_flight"), "redis.max_in_flight", "must be between 1 and %d (or 0 for the default), got %d", MaxRedisInFlight, n)
	}
	inFlight := r.MaxInFlight
	if inFlight == 0 {
		inFlight = DefaultRedisMaxInFlight
	}
	if n := r.MaxConcurrentCalls; n < 0 || n > inFlight {
		v.at(m.Pos("max_concurrent_calls"), "redis.max_concurrent_calls", "must be between 1 and max_in_flight (%d), or 0 for the default, got %d", inFlight, n)
	}
	if r.BreakerFailures < 0 {
		v.at(m.Pos("breaker_failures"), "redis.breaker_failures", "must be at least 1 (or 0 for the default), got %d", r.BreakerFailures)
	}
	if m.Has("breaker_cooldown") && r.BreakerCooldown != 0 && r.BreakerCooldown.D() < 10*time.Millisecond {
		v.at(m.Pos("breaker_cooldown"), "redis.breaker_cooldown", "must be at least 10ms (or 0 for the default), got %v", r.BreakerCooldown)
	}
	if r.TLS != nil {
		r.TLS.validate(v)
	}
}

func (s *RedisSentinel) validate(v *validator) {
	m := s.Meta
	if s.MasterSet == "" {
		v.at(m.Pos("master_set"), "redis.sentinel.master_set", "required: the name the sentinels monitor (sentinel monitor <name> ...)")
	} else if strings.ContainsAny(s.MasterSet, " \t\r\n") {
		v.at(m.Pos("master_set"), "redis.sentinel.master_set", "must not contain spaces, got %q", s.MasterSet)
	}
	if len(s.Addrs) == 0 {
		v.at(m.Pos("addrs"), "redis.sentinel.addrs", "at least one sentinel address is required (host:port)")
	}
	v.addrs(m.Pos("addrs"), "redis.sentinel.addrs", s.Addrs)
	if s.Username != "" && s.Password == "" {
		v.at(m.Pos("username"), "redis.sentinel.username", "needs a password")
	}
}

func (t *RedisTLS) validate(v *validator) {
	m := t.Meta
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.at(m.Pos("cert_file"), "redis.tls.key_file", "required with cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		v.at(m.Pos("key_file"), "redis.tls.cert_file", "required with key_file")
	case t.CertFile != "":
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.at(m.Pos("cert_file"), "redis.tls.cert_file", "cannot load the client certificate with key_file: %v", err)
		}
	}
	if t.CAFile != "" {
		if _, err := loadCA(t.CAFile); err != nil {
			v.at(m.Pos("ca_file"), "redis.tls.ca_file", "%v", err)
		}
		if t.InsecureSkipVerify {
			v.at(m.Pos("insecure_skip_verify"), "redis.tls.insecure_skip_verify", "turns off the verification ca_file is for: drop one of them")
		}
	}
}

// addrs checks each host:port of a list, positioned at its item.
func (v *validator) addrs(n *yaml.Node, path string, addrs []string) {
	for i, a := range addrs {
		switch _, port, err := net.SplitHostPort(a); {
		case strings.ContainsAny(a, "@/"):
			// "pass@host:6379" splits as a host: refuse it before the
			// password reaches the client library and its errors.
			v.at(seqItem(n, i), IndexPath(path, i), "expected host:port, got %q: credentials go in username and password, not in the address", RedactURL(a))
		case err != nil || port == "":
			v.at(seqItem(n, i), IndexPath(path, i), "expected host:port, got %q", RedactURL(a))
		}
	}
}
