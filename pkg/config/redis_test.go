package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// redisBase is a valid file whose redis: settings start on line 8.
const redisBase = `upstreams:
  app: { targets: ["http://127.0.0.1:9002"] }
routes:
  - name: all
    match: { path_prefix: / }
    upstream: app
redis:
`

func TestRedisValid(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantCluster bool
	}{
		{name: "single", give: `  addrs: ["127.0.0.1:6379"]`},
		{name: "seeds", give: `  addrs: ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]`, wantCluster: true},
		{name: "cluster flag", give: "  addrs: [\"10.0.0.1:7000\"]\n  cluster: true", wantCluster: true},
		{name: "sentinel", give: "  sentinel:\n    master_set: main\n    addrs: [\"10.0.0.5:26379\"]\n    username: s\n    password: p\n  db: 2"},
		{name: "tuned", give: `  addrs: ["127.0.0.1:6379"]
  username: gateway
  password: secret
  client_name: gatewayd-1
  client_side_cache: false
  connections_per_node: 4
  cache_size: 16MiB
  read_buffer_size: 64KiB
  write_buffer_size: 64KiB
  dial_timeout: 500ms
  command_timeout: 1s
  max_flush_delay: 20us
  max_in_flight: 1000
  max_concurrent_calls: 600
  topology_refresh: 10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("gw.yaml", []byte(redisBase+tt.give+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Redis.IsCluster(); got != tt.wantCluster {
				t.Fatalf("IsCluster() = %v, want %v", got, tt.wantCluster)
			}
		})
	}
}

func TestRedisInvalid(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{
			name: "no address",
			give: `  password: x`,
			want: []string{"gw.yaml:8: redis.addrs: at least one address is required (host:port)"},
		},
		{
			name: "bad address at its item",
			give: "  addrs:\n    - 127.0.0.1:6379\n    - redis-1",
			want: []string{`gw.yaml:10: redis.addrs[1]: expected host:port, got "redis-1"`},
		},
		{
			name: "sentinel with addrs and cluster",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  cluster: true\n  sentinel: { addrs: [\"x\"], username: u }",
			want: []string{
				"gw.yaml:8: redis.addrs: must be empty with sentinel: the master is discovered; list the sentinels in sentinel.addrs",
				"gw.yaml:9: redis.cluster: cluster and sentinel exclude each other: Redis Cluster fails over by itself",
				"gw.yaml:10: redis.sentinel.master_set: required: the name the sentinels monitor (sentinel monitor <name> ...)",
				`gw.yaml:10: redis.sentinel.addrs[0]: expected host:port, got "x"`,
				"gw.yaml:10: redis.sentinel.username: needs a password",
			},
		},
		{
			name: "db on a cluster",
			give: "  addrs: [\"10.0.0.1:7000\", \"10.0.0.2:7000\"]\n  db: 3",
			want: []string{"gw.yaml:9: redis.db: Redis Cluster has only database 0, got 3"},
		},
		{
			name: "username without password",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  username: gateway",
			want: []string{"gw.yaml:9: redis.username: needs a password"},
		},
		{
			name: "connections per node not a power of two",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  client_side_cache: false\n  connections_per_node: 3",
			want: []string{"gw.yaml:10: redis.connections_per_node: must be a power of two between 1 and 256, got 3"},
		},
		{
			name: "several connections with the cache",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  connections_per_node: 4",
			want: []string{"gw.yaml:9: redis.connections_per_node: more than one connection per node needs client_side_cache: false " +
				"(with the cache, one connection per node keeps a logout visible to the next request of the instance that served it)"},
		},
		{
			name: "tiny sizes and timeouts",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  read_buffer_size: 100\n  cache_size: 10\n  command_timeout: 1ms\n  client_name: my gateway",
			want: []string{
				"gw.yaml:9: redis.read_buffer_size: must be at least 1KiB, got 100",
				"gw.yaml:10: redis.cache_size: must be at least 1KiB, got 10",
				"gw.yaml:11: redis.command_timeout: must be at least 10ms (or 0 for the default), got 1ms",
				`gw.yaml:12: redis.client_name: must not contain spaces, got "my gateway"`,
			},
		},
		{
			name: "guard out of range",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  max_in_flight: 2048\n  breaker_failures: -1\n  breaker_cooldown: 1ms",
			want: []string{
				"gw.yaml:9: redis.max_in_flight: must be between 1 and 1023 (or 0 for the default), got 2048",
				"gw.yaml:10: redis.breaker_failures: must be at least 1 (or 0 for the default), got -1",
				"gw.yaml:11: redis.breaker_cooldown: must be at least 10ms (or 0 for the default), got 1ms",
			},
		},
		{
			name: "concurrent calls over the default in-flight cap",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  max_concurrent_calls: 600",
			want: []string{"gw.yaml:9: redis.max_concurrent_calls: must be between 1 and max_in_flight (512), or 0 for the default, got 600"},
		},
		{
			name: "concurrent calls negative",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  max_concurrent_calls: -1",
			want: []string{"gw.yaml:9: redis.max_concurrent_calls: must be between 1 and max_in_flight (512), or 0 for the default, got -1"},
		},
		{
			name: "concurrent calls over a set in-flight cap",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  max_in_flight: 100\n  max_concurrent_calls: 101",
			want: []string{"gw.yaml:10: redis.max_concurrent_calls: must be between 1 and max_in_flight (100), or 0 for the default, got 101"},
		},
		{
			name: "tls cert without key",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  tls:\n    cert_file: /x.pem",
			want: []string{"gw.yaml:10: redis.tls.key_file: required with cert_file"},
		},
		{
			name: "tls unreadable ca and skip verify",
			give: "  addrs: [\"10.0.0.1:6379\"]\n  tls: { ca_file: /nonexistent/ca.pem, insecure_skip_verify: true }",
			want: []string{
				"gw.yaml:9: redis.tls.ca_file: read ca_file: open /nonexistent/ca.pem: no such file or directory",
				"gw.yaml:9: redis.tls.insecure_skip_verify: turns off the verification ca_file is for: drop one of them",
			},
		},
		{
			name: "unknown key",
			give: "  sentinel: { master: main, addrs: [\"10.0.0.1:26379\"] }",
			want: []string{
				`gw.yaml:8: redis.sentinel.master: unknown field "master" (known fields: addrs, master_set, password, username)`,
				"gw.yaml:8: redis.sentinel.master_set: required: the name the sentinels monitor (sentinel monitor <name> ...)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gw.yaml", []byte(redisBase+tt.give+"\n"))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			got := Errors(err)
			var lines []string
			for _, e := range got {
				lines = append(lines, e.Error())
			}
			if strings.Join(lines, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRedisValidate checks the section on its own, as authd does.
func TestRedisValidate(t *testing.T) {
	r := &Redis{Sentinel: &RedisSentinel{Addrs: []string{"10.0.0.5:26379"}}}
	err := r.Validate("auth.yaml")
	if err == nil || !strings.Contains(err.Error(), "auth.yaml: redis.sentinel.master_set: required") {
		t.Fatalf("Validate = %v, want the missing master_set", err)
	}
	r.Sentinel.MasterSet = "main"
	if err := r.Validate("auth.yaml"); err != nil {
		t.Fatalf("Validate of a valid sentinel section = %v", err)
	}
}

func TestRedisTLSConfig(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	tc, err := (&RedisTLS{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "redis.internal"}).Config()
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "redis.internal" || tc.InsecureSkipVerify {
		t.Fatalf("Config() = %+v", tc)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&RedisTLS{CAFile: notPEM}).Config(); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("Config with a CA file without certificates: %v, want ErrNoCertificate", err)
	}
	if _, err := (&RedisTLS{CertFile: cert, KeyFile: notPEM}).Config(); err == nil {
		t.Fatal("Config with a bad key succeeded")
	}
	// The same files pass validation.
	yaml := redisBase + "  addrs: [\"10.0.0.1:6379\"]\n  tls: { ca_file: " + ca + ", cert_file: " + cert + ", key_file: " + key + " }\n"
	if _, err := Parse("gw.yaml", []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}

// writeTLSFiles writes a self-signed certificate (used as CA and as client
// certificate) and its key.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert = filepath.Join(dir, "cert.pem")
	key = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, cert, key
}
