package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Scenario names.
const (
	scDirect      = "direct"
	scFasthttpMin = "fasthttp-min"
	scPassthrough = "passthrough"
	scChainMemory = "chain-memory"
	scChainRedis  = "chain-redis"
	// scChainRedisLease is chain-redis with ratelimit sync: lease.
	scChainRedisLease = "chain-redis-lease"
	scNginx           = "nginx"
	scHAProxyJWT      = "haproxy-jwt"

	// TLS termination (SPEC §15): the full chain over TLS 1.3 against nginx
	// terminating TLS 1.3 with the same certificate, on keep-alive
	// connections and with one request per connection (a full handshake
	// each).
	scChainTLS          = "chain-tls"
	scNginxTLS          = "nginx-tls"
	scChainTLSHandshake = "chain-tls-handshake"
	scNginxTLSHandshake = "nginx-tls-handshake"
)

// allScenarios is the default order, which is also the order of every
// round.
var allScenarios = []string{scDirect, scFasthttpMin, scPassthrough, scChainMemory, scChainRedis, scChainRedisLease, scNginx, scHAProxyJWT,
	scChainTLS, scNginxTLS, scChainTLSHandshake, scNginxTLSHandshake}

var scenarioDescriptions = map[string]string{
	scDirect:      "no proxy: the load generator talks to the upstream (the ceiling)",
	scFasthttpMin: "bench/fasthttp-min: fasthttp server + HostClient.Do, nothing else (the practical ceiling of the design)",
	scPassthrough: "gatewayd, a route with no plugins",
	scChainMemory: "gatewayd, request-id + jwt + blacklist + rbac + ratelimit(key: user) on the in-process store",
	scChainRedis:  "gatewayd, the same chain on a local redis-server (client-side cache on)",
	scChainRedisLease: "chain-redis with ratelimit sync: lease: tokens taken from the Redis bucket in batches and admitted locally, " +
		"renewed ahead of need",
	scNginx:      "nginx, plain reverse proxy, upstream keep-alive, 1 worker",
	scHAProxyJWT: "HAProxy, jwt_verify HS256 + alg + exp + role check + per-user stick-table rate limit, nbthread 1",
	scChainTLS:   "gatewayd, the chain-memory chain behind TLS 1.3 termination (ECDSA P-256 certificate, X25519), keep-alive",
	scNginxTLS:   "nginx terminating TLS 1.3 with the same certificate, plain proxy_pass, 1 worker, keep-alive",
	scChainTLSHandshake: "chain-tls with one request per connection: a full TLS 1.3 handshake (no resumption) for every request; " +
		"bench/load measures it (wrk cannot disable keep-alive)",
	scNginxTLSHandshake: "nginx-tls with one request per connection, as chain-tls-handshake",
}

// handshakeScenarios send one request per connection.
var handshakeScenarios = map[string]bool{scChainTLSHandshake: true, scNginxTLSHandshake: true}

// tlsScenarios serve HTTPS with the bench certificate.
var tlsScenarios = map[string]bool{scChainTLS: true, scNginxTLS: true, scChainTLSHandshake: true, scNginxTLSHandshake: true}

// benchPath is the request path of every scenario.
const benchPath = "/bench/hello"

// scenario is one thing under load.
type scenario struct {
	name  string
	url   string
	proc  *proc // the proxy under test (nil for direct)
	admin string
	skip  string // why it did not run
	// perConn, when positive, is the number of requests sent on each
	// connection before a new one is opened (bench/load only).
	perConn int
}

// env holds what the scenarios share.
type env struct {
	dir      string
	bin      string // directory of the bench tools
	gatewayd string
	pin      pinning
	secret   string
	upstream string // 127.0.0.1:port
	redis    string
	tokens   []string
	procs    []*proc
	// certFile and keyFile are the self-signed certificate every TLS
	// scenario serves (made by tlsCertificate on first use).
	certFile, keyFile string
}

func (e *env) track(p *proc) *proc {
	e.procs = append(e.procs, p)
	return p
}

func (e *env) stopAll() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
}

// authHeader is a valid Authorization header for readiness probes.
func (e *env) authHeader() map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.tokens[0]}
}

// startUpstream starts bench/upstream on the load CPU.
func (e *env) startUpstream(size int, latency time.Duration) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	e.upstream = "127.0.0.1:" + strconv.Itoa(port)
	cmd := e.pin.command(e.pin.loadCPU, filepath.Join(e.bin, "upstream"),
		"-addr", e.upstream, "-size", strconv.Itoa(size), "-latency", latency.String())
	p, err := startProc(e.dir, "upstream", cmd, "GOMAXPROCS=1")
	if err != nil {
		return err
	}
	e.track(p)
	return waitTCP(p, e.upstream, 10*time.Second)
}

// startRedis starts a throwaway redis-server on the load CPU.
func (e *env) startRedis(redisBin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	e.redis = "127.0.0.1:" + strconv.Itoa(port)
	cmd := e.pin.command(e.pin.loadCPU, redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", e.dir, "--daemonize", "no", "--loglevel", "warning")
	p, err := startProc(e.dir, "redis", cmd)
	if err != nil {
		return err
	}
	e.track(p)
	return waitTCP(p, e.redis, 10*time.Second)
}

const gatewayConfig = `version: 1
listen: "127.0.0.1:{{PORT}}"
admin: { listen: "127.0.0.1:{{ADMIN}}" }
# Every load connection comes from one loopback address.
server: { max_connections_per_ip: 0 }
log: { level: warn, format: json, access_log: false }
{{REDIS}}
upstreams:
  bench: { targets: ["http://{{UPSTREAM}}"], timeout: 10s, retries: 0 }
{{TLS}}
{{PLUGINS}}
routes:
  - name: bench
    match: { path_prefix: /bench/ }
    upstream: bench
{{CHAIN}}
`

const gatewayPlugins = `plugins:
  auth-jwt:
    type: jwt
    algorithms: [HS256]
    secret: "{{SECRET}}"
    issuer: gatewayd-auth
    audience: api
    forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email }`

// The limit is far above what one core can send, so nothing is rejected
// while every request still takes a token from its user's bucket.
const gatewayChain = `    plugins:
      - request-id
      - auth-jwt
      - blacklist
      - rbac: { roles: [user, admin] }
      - ratelimit: { key: user, limit: 1000000, period: 1s, sync: {{SYNC}} }`

// gatewayYAML renders the configuration of a gatewayd scenario.
func (e *env) gatewayYAML(name string, port, admin int) string {
	r := map[string]string{
		"{{PORT}}": strconv.Itoa(port), "{{ADMIN}}": strconv.Itoa(admin),
		"{{UPSTREAM}}": e.upstream, "{{REDIS}}": "", "{{PLUGINS}}": "", "{{CHAIN}}": "", "{{TLS}}": "",
	}
	if tlsScenarios[name] {
		r["{{TLS}}"] = `tls: { min_version: "1.3", certificates: [{ cert_file: "` + e.certFile + `", key_file: "` + e.keyFile + `" }] }`
	}
	if name != scPassthrough {
		r["{{PLUGINS}}"] = strings.ReplaceAll(gatewayPlugins, "{{SECRET}}", e.secret)
		sync := "exact"
		if name == scChainRedisLease {
			sync = "lease"
		}
		r["{{CHAIN}}"] = strings.ReplaceAll(gatewayChain, "{{SYNC}}", sync)
	}
	if name == scChainRedis || name == scChainRedisLease {
		r["{{REDIS}}"] = `redis: { addrs: ["` + e.redis + `"] }`
	}
	out := gatewayConfig
	for k, v := range r {
		out = strings.ReplaceAll(out, k, v)
	}
	return out
}

// startGateway starts gatewayd for a scenario on the proxy CPU with
// GOMAXPROCS=1, after validating its configuration with -check.
func (e *env) startGateway(sc *scenario) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	admin, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(e.dir, sc.name+".yaml")
	if err := os.WriteFile(cfg, []byte(e.gatewayYAML(sc.name, port, admin)), 0o600); err != nil {
		return err
	}
	bin := e.gatewayd
	if out, err := exec.Command(bin, "-check", "-config", cfg).CombinedOutput(); err != nil {
		return fmt.Errorf("gatewayd -check %s: %v\n%s", cfg, err, out)
	}
	p, err := startProc(e.dir, sc.name, e.pin.command(e.pin.proxyCPU, bin, "-config", cfg), "GOMAXPROCS=1")
	if err != nil {
		return err
	}
	sc.proc = e.track(p)
	sc.admin = "127.0.0.1:" + strconv.Itoa(admin)
	sc.url = scheme(sc.name) + "127.0.0.1:" + strconv.Itoa(port) + benchPath
	if err := waitHTTP(p, "http://"+sc.admin+"/readyz", nil, 200, 20*time.Second); err != nil {
		return err
	}
	return waitHTTP(p, sc.url, e.authHeader(), 200, 10*time.Second)
}

// startFasthttpMin starts bench/fasthttp-min on the proxy CPU.
func (e *env) startFasthttpMin(sc *scenario) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := e.pin.command(e.pin.proxyCPU, filepath.Join(e.bin, "fasthttp-min"), "-addr", addr, "-upstream", e.upstream)
	p, err := startProc(e.dir, sc.name, cmd, "GOMAXPROCS=1")
	if err != nil {
		return err
	}
	sc.proc = e.track(p)
	sc.url = "http://" + addr + benchPath
	return waitHTTP(p, sc.url, nil, 200, 10*time.Second)
}

const nginxConfig = `worker_processes 1;
daemon off;
master_process on;
pid {{DIR}}/{{NAME}}.pid;
error_log {{DIR}}/{{NAME}}-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path {{DIR}}/{{NAME}}-tmp/body;
    proxy_temp_path {{DIR}}/{{NAME}}-tmp/proxy;
    fastcgi_temp_path {{DIR}}/{{NAME}}-tmp/fastcgi;
    uwsgi_temp_path {{DIR}}/{{NAME}}-tmp/uwsgi;
    scgi_temp_path {{DIR}}/{{NAME}}-tmp/scgi;
    keepalive_requests 1000000;
    upstream bench {
        server {{UPSTREAM}};
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:{{PORT}}{{LISTEN_TLS}};
{{TLS}}        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// nginxTLS is the TLS part of the nginx-tls scenarios: TLS 1.3 only, as
// gatewayd's, with the same certificate. Session tickets and the session
// cache are off, as in gatewayd's handshake scenario the client never
// resumes anyway.
const nginxTLS = `        ssl_certificate {{CERT}};
        ssl_certificate_key {{KEY}};
        ssl_protocols TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;
`

// nginxText renders the nginx configuration of a scenario.
func (e *env) nginxText(name string, port int) string {
	listenTLS, tlsBlock := "", ""
	if tlsScenarios[name] {
		listenTLS = " ssl"
		tlsBlock = strings.NewReplacer("{{CERT}}", e.certFile, "{{KEY}}", e.keyFile).Replace(nginxTLS)
	}
	return strings.NewReplacer("{{DIR}}", e.dir, "{{NAME}}", name, "{{UPSTREAM}}", e.upstream, "{{PORT}}", strconv.Itoa(port),
		"{{LISTEN_TLS}}", listenTLS, "{{TLS}}", tlsBlock).Replace(nginxConfig)
}

// startNginx starts nginx (one worker) on the proxy CPU.
func (e *env) startNginx(sc *scenario, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(e.dir, sc.name+"-tmp"), 0o777); err != nil {
		return err
	}
	cfg := filepath.Join(e.dir, sc.name+".conf")
	if err := os.WriteFile(cfg, []byte(e.nginxText(sc.name, port)), 0o644); err != nil {
		return err
	}
	cmd := e.pin.command(e.pin.proxyCPU, bin, "-p", e.dir, "-c", cfg, "-e", filepath.Join(e.dir, sc.name+"-error.log"))
	p, err := startProc(e.dir, sc.name, cmd)
	if err != nil {
		return err
	}
	sc.proc = e.track(p)
	sc.url = scheme(sc.name) + "127.0.0.1:" + strconv.Itoa(port) + benchPath
	return waitHTTP(p, sc.url, nil, 200, 10*time.Second)
}

// scheme is the URL scheme of a scenario, with "://".
func scheme(name string) string {
	if tlsScenarios[name] {
		return "https://"
	}
	return "http://"
}

// tlsCertificate writes the self-signed ECDSA P-256 certificate (for
// 127.0.0.1) and key the TLS scenarios serve, once, and makes waitHTTP
// trust it.
func (e *env) tlsCertificate() error {
	if e.certFile != "" {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "gatewayd-bench"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(e.dir, "bench-cert.pem"), filepath.Join(e.dir, "bench-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	benchRoots = x509.NewCertPool()
	benchRoots.AddCert(cert)
	e.certFile, e.keyFile = certFile, keyFile
	return nil
}

// haproxyConfig verifies the same tokens the gateway does, as far as
// HAProxy 2.6 can: the signature with HS256 only, exp against the clock,
// the role claim, and a per-user request rate in a stick table (limit far
// above the load, as in chain-*). It does not check iss, aud, typ or
// revocation.
const haproxyConfig = `global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive

frontend bench
    bind 127.0.0.1:{{PORT}}
    http-request set-var(txn.bearer) http_auth_bearer
    http-request deny deny_status 401 unless { var(txn.bearer) -m found }
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request deny deny_status 401 unless { var(txn.alg) -m str HS256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"{{SECRET}}") -m int 1 }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request set-var(txn.role) var(txn.bearer),jwt_payload_query('$.role')
    http-request deny deny_status 403 unless { var(txn.role) -m str user admin }
    http-request set-var(txn.sub) var(txn.bearer),jwt_payload_query('$.sub')
    http-request track-sc0 var(txn.sub) table per_user
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }
    default_backend upstream

backend per_user
    stick-table type string len 64 size 200k expire 60s store http_req_rate(1s)

backend upstream
    http-reuse always
    server up {{UPSTREAM}}
`

// startHAProxy starts haproxy (one thread) on the proxy CPU.
func (e *env) startHAProxy(sc *scenario, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(e.dir, "haproxy.cfg")
	text := strings.NewReplacer("{{SECRET}}", e.secret, "{{UPSTREAM}}", e.upstream, "{{PORT}}", strconv.Itoa(port)).Replace(haproxyConfig)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		return fmt.Errorf("haproxy -c: %v\n%s", err, out)
	}
	p, err := startProc(e.dir, sc.name, e.pin.command(e.pin.proxyCPU, bin, "-db", "-f", cfg))
	if err != nil {
		return err
	}
	sc.proc = e.track(p)
	sc.url = "http://127.0.0.1:" + strconv.Itoa(port) + benchPath
	if err := waitHTTP(p, sc.url, e.authHeader(), 200, 10*time.Second); err != nil {
		return err
	}
	// The JWT checks must refuse what they should, or the comparison means
	// nothing.
	return waitHTTP(p, sc.url, map[string]string{"Authorization": "Bearer " + tamper(e.tokens[0])}, 401, 5*time.Second)
}

// tamper flips one character of a token's signature.
func tamper(tok string) string {
	b := []byte(tok)
	last := len(b) - 2
	if b[last] == 'A' {
		b[last] = 'B'
	} else {
		b[last] = 'A'
	}
	return string(b)
}
