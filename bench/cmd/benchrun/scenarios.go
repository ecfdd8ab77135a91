package main

import (
	"fmt"
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
	scNginx       = "nginx"
	scHAProxyJWT  = "haproxy-jwt"
)

// allScenarios is the default order, which is also the order of every
// round.
var allScenarios = []string{scDirect, scFasthttpMin, scPassthrough, scChainMemory, scChainRedis, scNginx, scHAProxyJWT}

var scenarioDescriptions = map[string]string{
	scDirect:      "no proxy: the load generator talks to the upstream (the ceiling)",
	scFasthttpMin: "bench/fasthttp-min: fasthttp server + HostClient.Do, nothing else (the practical ceiling of the design)",
	scPassthrough: "gatewayd, a route with no plugins",
	scChainMemory: "gatewayd, request-id + jwt + blacklist + rbac + ratelimit(key: user) on the in-process store",
	scChainRedis:  "gatewayd, the same chain on a local redis-server (client-side cache on)",
	scNginx:       "nginx, plain reverse proxy, upstream keep-alive, 1 worker",
	scHAProxyJWT:  "HAProxy, jwt_verify HS256 + alg + exp + role check + per-user stick-table rate limit, nbthread 1",
}

// benchPath is the request path of every scenario.
const benchPath = "/bench/hello"

// scenario is one thing under load.
type scenario struct {
	name  string
	url   string
	proc  *proc // the proxy under test (nil for direct)
	admin string
	skip  string // why it did not run
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
      - ratelimit: { key: user, limit: 1000000, period: 1s }`

// gatewayYAML renders the configuration of a gatewayd scenario.
func (e *env) gatewayYAML(name string, port, admin int) string {
	r := map[string]string{
		"{{PORT}}": strconv.Itoa(port), "{{ADMIN}}": strconv.Itoa(admin),
		"{{UPSTREAM}}": e.upstream, "{{REDIS}}": "", "{{PLUGINS}}": "", "{{CHAIN}}": "",
	}
	if name != scPassthrough {
		r["{{PLUGINS}}"] = strings.ReplaceAll(gatewayPlugins, "{{SECRET}}", e.secret)
		r["{{CHAIN}}"] = gatewayChain
	}
	if name == scChainRedis {
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
	sc.url = "http://127.0.0.1:" + strconv.Itoa(port) + benchPath
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
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path {{DIR}}/nginx-tmp/body;
    proxy_temp_path {{DIR}}/nginx-tmp/proxy;
    fastcgi_temp_path {{DIR}}/nginx-tmp/fastcgi;
    uwsgi_temp_path {{DIR}}/nginx-tmp/uwsgi;
    scgi_temp_path {{DIR}}/nginx-tmp/scgi;
    keepalive_requests 1000000;
    upstream bench {
        server {{UPSTREAM}};
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

// startNginx starts nginx (one worker) on the proxy CPU.
func (e *env) startNginx(sc *scenario, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(e.dir, "nginx-tmp"), 0o777); err != nil {
		return err
	}
	cfg := filepath.Join(e.dir, "nginx.conf")
	text := strings.NewReplacer("{{DIR}}", e.dir, "{{UPSTREAM}}", e.upstream, "{{PORT}}", strconv.Itoa(port)).Replace(nginxConfig)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	cmd := e.pin.command(e.pin.proxyCPU, bin, "-p", e.dir, "-c", cfg, "-e", filepath.Join(e.dir, "nginx-error.log"))
	p, err := startProc(e.dir, sc.name, cmd)
	if err != nil {
		return err
	}
	sc.proc = e.track(p)
	sc.url = "http://127.0.0.1:" + strconv.Itoa(port) + benchPath
	return waitHTTP(p, sc.url, nil, 200, 10*time.Second)
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
