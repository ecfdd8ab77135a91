package redis_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
)

func TestOptions(t *testing.T) {
	off := false
	tests := []struct {
		name          string
		give          config.Redis
		wantInit      []string
		wantMasterSet string
		wantMultiplex int
		wantNoCache   bool
		wantWrite     time.Duration
		wantDial      time.Duration
		wantRefresh   time.Duration
	}{
		{
			name:          "defaults",
			give:          config.Redis{Addrs: []string{"10.0.0.1:6379"}},
			wantInit:      []string{"10.0.0.1:6379"},
			wantMultiplex: -1,
			wantWrite:     config.DefaultRedisCommandTimeout,
			wantDial:      config.DefaultRedisDialTimeout,
			wantRefresh:   config.DefaultRedisTopologyRefresh,
		},
		{
			name: "cluster seeds and timeouts",
			give: config.Redis{
				Addrs:       []string{"10.0.0.1:7000", "10.0.0.2:7000"},
				DialTimeout: config.Duration(time.Second), CommandTimeout: config.Duration(500 * time.Millisecond),
				TopologyRefresh: config.Duration(time.Minute),
			},
			wantInit:      []string{"10.0.0.1:7000", "10.0.0.2:7000"},
			wantMultiplex: -1,
			wantWrite:     500 * time.Millisecond,
			wantDial:      time.Second,
			wantRefresh:   time.Minute,
		},
		{
			name: "sentinel",
			give: config.Redis{Sentinel: &config.RedisSentinel{
				MasterSet: "main", Addrs: []string{"10.0.0.5:26379", "10.0.0.6:26379"},
			}},
			wantInit:      []string{"10.0.0.5:26379", "10.0.0.6:26379"},
			wantMasterSet: "main",
			wantMultiplex: -1,
			wantWrite:     config.DefaultRedisCommandTimeout,
			wantDial:      config.DefaultRedisDialTimeout,
			wantRefresh:   config.DefaultRedisTopologyRefresh,
		},
		{
			name:          "connections per node without cache",
			give:          config.Redis{Addrs: []string{"10.0.0.1:6379"}, ClientSideCache: &off, ConnectionsPerNode: 8},
			wantInit:      []string{"10.0.0.1:6379"},
			wantMultiplex: 3,
			wantNoCache:   true,
			wantWrite:     config.DefaultRedisCommandTimeout,
			wantDial:      config.DefaultRedisDialTimeout,
			wantRefresh:   config.DefaultRedisTopologyRefresh,
		},
		{
			name:          "library default without cache",
			give:          config.Redis{Addrs: []string{"10.0.0.1:6379"}, ClientSideCache: &off},
			wantInit:      []string{"10.0.0.1:6379"},
			wantMultiplex: 0,
			wantNoCache:   true,
			wantWrite:     config.DefaultRedisCommandTimeout,
			wantDial:      config.DefaultRedisDialTimeout,
			wantRefresh:   config.DefaultRedisTopologyRefresh,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := redis.Options(&tt.give)
			if !slicesEqual(o.InitAddress, tt.wantInit) {
				t.Errorf("InitAddress = %v, want %v", o.InitAddress, tt.wantInit)
			}
			if len(tt.give.Addrs) > 0 && &o.InitAddress[0] == &tt.give.Addrs[0] {
				t.Error("InitAddress shares the config's slice: ShuffleInit would reorder the configuration")
			}
			if o.Sentinel.MasterSet != tt.wantMasterSet {
				t.Errorf("Sentinel.MasterSet = %q, want %q", o.Sentinel.MasterSet, tt.wantMasterSet)
			}
			if tt.wantMasterSet != "" && o.Sentinel.TopologyRefreshInterval != tt.wantRefresh {
				t.Errorf("Sentinel.TopologyRefreshInterval = %v, want %v", o.Sentinel.TopologyRefreshInterval, tt.wantRefresh)
			}
			if o.PipelineMultiplex != tt.wantMultiplex {
				t.Errorf("PipelineMultiplex = %d, want %d", o.PipelineMultiplex, tt.wantMultiplex)
			}
			if o.DisableCache != tt.wantNoCache {
				t.Errorf("DisableCache = %v, want %v", o.DisableCache, tt.wantNoCache)
			}
			if o.ConnWriteTimeout != tt.wantWrite || o.Dialer.Timeout != tt.wantDial {
				t.Errorf("ConnWriteTimeout, Dialer.Timeout = %v, %v; want %v, %v", o.ConnWriteTimeout, o.Dialer.Timeout, tt.wantWrite, tt.wantDial)
			}
			if o.ClusterOption.ShardsRefreshInterval != tt.wantRefresh {
				t.Errorf("ShardsRefreshInterval = %v, want %v", o.ClusterOption.ShardsRefreshInterval, tt.wantRefresh)
			}
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClusterRequiredOnStandalone: cluster: true refuses a server that is
// not a cluster node instead of silently running single-node.
func TestClusterRequiredOnStandalone(t *testing.T) {
	// Failed connection attempts leave delayed slot-map refreshes behind.
	t.Cleanup(func() { waitDelayedCloses(t) })
	srv := redistest.Start(t)
	s, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}, Cluster: true})
	if !errors.Is(err, redis.ErrNotCluster) {
		if s != nil {
			_ = s.Close()
		}
		t.Fatalf("New with cluster: true on a standalone server: %v, want ErrNotCluster", err)
	}
	s = connect(t, srv.Addr(), true)
	if got := s.Topology(); got != "standalone" {
		t.Fatalf("Topology() = %q, want standalone", got)
	}
}

// TestSentinel runs the store on a master found through three sentinels:
// the conformance suite, then a failover: while the master is down calls
// fail with ErrUnavailable within their deadline; after the sentinels
// promote the replica the same client serves the replicated bucket and
// revocation, and client-side cache invalidation works on the new master.
func TestSentinel(t *testing.T) {
	skipShort(t)
	t.Cleanup(func() { waitDelayedCloses(t) })
	st := redistest.StartSentinel(t)
	open := func(t *testing.T, cache bool) *redis.Store {
		t.Helper()
		s, err := redis.New(&config.Redis{
			Sentinel:        &config.RedisSentinel{MasterSet: redistest.SentinelMasterSet, Addrs: st.Addrs()},
			ClientSideCache: &cache,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if got := s.Topology(); got != "sentinel" {
			t.Fatalf("Topology() = %q, want sentinel", got)
		}
		return s
	}
	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (store.Store, storetest.Clock) {
			return open(t, true), storetest.RealClock{}
		})
	})
	t.Run("Failover", func(t *testing.T) {
		ctx := context.Background()
		s, other := open(t, true), open(t, true)
		master, err := st.Master()
		if err != nil {
			t.Fatal(err)
		}
		id := []byte("sentinel-failover")
		r := store.Rate{Limit: 1, Period: time.Hour, Burst: 10}
		if _, err := s.Take(ctx, id, r, 4); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "sentinel-jti", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		replica := otherNode(t, st, master)
		deadline := time.Now().Add(5 * time.Second)
		for {
			v, _ := replica.Do("GET", redis.RevokedKey("sentinel-jti"))
			if v == "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("revocation not replicated after 5s")
			}
			time.Sleep(10 * time.Millisecond)
		}

		killed := time.Now()
		master.Kill()
		const callDeadline = 100 * time.Millisecond
		var failures int
		var gap time.Duration
		for time.Since(killed) < 30*time.Second {
			cctx, cancel := context.WithTimeout(ctx, callDeadline)
			start := time.Now()
			_, err := s.Take(cctx, id, r, 1)
			took := time.Since(start)
			cancel()
			if err == nil {
				gap = time.Since(killed)
				break
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("Take with the master down: %v, want ErrUnavailable", err)
			}
			if took > callDeadline+time.Second {
				t.Fatalf("Take with the master down took %v with a %v deadline", took, callDeadline)
			}
			failures++
			time.Sleep(10 * time.Millisecond)
		}
		if gap == 0 {
			t.Fatal("no successful Take within 30s of the master's death")
		}
		promoted, err := st.WaitFailover(master.Addr(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sentinel failover gap seen by the client: %v (%d failed calls, each ErrUnavailable within its %v deadline); new master %s",
			gap, failures, callDeadline, promoted.Addr())
		res, err := s.Take(ctx, id, r, 1)
		if err != nil || res.Remaining > 5 {
			t.Fatalf("Take after failover = %+v, %v; want the replicated bucket (at most 5 left)", res, err)
		}
		if ok, err := s.IsRevoked(ctx, []byte("sentinel-jti"), nil, 0, time.Second); err != nil || !ok {
			t.Fatalf("IsRevoked after failover = %v, %v; want the replicated revocation", ok, err)
		}
		// Client-side caching on the promoted master: a cached "not
		// revoked" is invalidated by another client's revocation.
		const maxStale = 10 * time.Second
		if ok, err := s.IsRevoked(ctx, []byte("after-failover"), nil, 0, maxStale); err != nil || ok {
			t.Fatalf("IsRevoked = %v, %v", ok, err)
		}
		// other was idle through the failover: it may still hold the dead
		// master's connection until the +switch-master event reaches it or
		// its refresh (backing off up to 1s) runs again. Revoke is
		// idempotent, so it is retried until then.
		promotedAt := time.Now()
		for attempt := 1; ; attempt++ {
			err := other.Revoke(ctx, "after-failover", time.Now().Add(time.Hour))
			if err == nil {
				if attempt > 1 {
					t.Logf("a client idle through the failover wrote again %v after the promotion was seen (%d attempts)",
						time.Since(promotedAt).Round(time.Millisecond), attempt)
				}
				break
			}
			if !errors.Is(err, store.ErrUnavailable) || time.Since(promotedAt) > config.DefaultRedisTopologyRefresh+time.Second {
				t.Fatalf("Revoke through a client idle during the failover, %v after the promotion: %v", time.Since(promotedAt), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		done := time.Now()
		for {
			ok, err := s.IsRevoked(ctx, []byte("after-failover"), nil, 0, maxStale)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			if time.Since(done) > maxStale/2 {
				t.Fatal("revocation on the promoted master not seen through the cache")
			}
			time.Sleep(50 * time.Microsecond)
		}
		t.Logf("invalidation on the promoted master after %v", time.Since(done))
	})
}

// otherNode returns the data node of st that is not master.
func otherNode(t *testing.T, st *redistest.Sentinel, master *redistest.Server) *redistest.Server {
	t.Helper()
	for _, n := range st.DataNodes() {
		if n != master {
			return n
		}
	}
	t.Fatal("no replica")
	return nil
}

// TestTLS connects to a redis-server that only accepts TLS clients with a
// certificate signed by the test CA.
func TestTLS(t *testing.T) {
	// Failed connection attempts leave delayed slot-map refreshes behind.
	t.Cleanup(func() { waitDelayedCloses(t) })
	dir := t.TempDir()
	files := writeTestPKI(t, dir)
	port := redistest.FreePort(t)
	srv := redistest.Start(t,
		"--tls-port", strconv.Itoa(port),
		"--tls-cert-file", files["server.crt"], "--tls-key-file", files["server.key"],
		"--tls-ca-cert-file", files["ca.crt"], "--tls-auth-clients", "yes")
	srv.RequireOwned(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	tlsCfg := &config.RedisTLS{CAFile: files["ca.crt"], CertFile: files["client.crt"], KeyFile: files["client.key"]}
	s, err := redis.New(&config.Redis{Addrs: []string{addr}, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Take(context.Background(), []byte("tls"), store.Rate{Limit: 1, Period: time.Second, Burst: 2}, 1); err != nil || !res.Allowed {
		t.Fatalf("Take over TLS = %+v, %v", res, err)
	}

	// Without a client certificate the server refuses the handshake.
	noCert := &config.RedisTLS{CAFile: files["ca.crt"]}
	if s, err := redis.New(&config.Redis{Addrs: []string{addr}, TLS: noCert, DialTimeout: config.Duration(time.Second)}); err == nil {
		_ = s.Close()
		t.Fatal("connected without a client certificate")
	}
	// A server certificate from another CA is refused by the client.
	other := writeTestPKI(t, t.TempDir())
	wrongCA := &config.RedisTLS{CAFile: other["ca.crt"], CertFile: files["client.crt"], KeyFile: files["client.key"]}
	if s, err := redis.New(&config.Redis{Addrs: []string{addr}, TLS: wrongCA, DialTimeout: config.Duration(time.Second)}); err == nil {
		_ = s.Close()
		t.Fatal("connected to a server whose certificate the CA did not sign")
	}
	// Unreadable files are reported before dialling.
	missing := &config.RedisTLS{CAFile: filepath.Join(dir, "nope.crt")}
	if _, err := redis.New(&config.Redis{Addrs: []string{addr}, TLS: missing}); err == nil {
		t.Fatal("New with a missing ca_file succeeded")
	}
}

// writeTestPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, and returns their paths by name.
func writeTestPKI(t *testing.T, dir string) map[string]string {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	files := map[string]string{}
	write := func(name, typ string, der []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		files[name] = p
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatewayd test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.crt", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".crt", "CERTIFICATE", der)
		write(name+".key", "EC PRIVATE KEY", kder)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth)
	leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return files
}
