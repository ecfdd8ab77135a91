package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/testpki"
	"github.com/valyala/fasthttp"
)

// tlsEcho is the echo upstream over TLS on a loopback port. Its certificate
// and the CA it requires client certificates from (nil: none asked) can be
// swapped while it runs.
type tlsEcho struct {
	addr     string
	cert     atomic.Pointer[tls.Certificate]
	clientCA atomic.Pointer[x509.CertPool]
	health   atomic.Int64 // health check requests served
}

// startTLSEcho serves the echo handler over TLS with leaf. With fresh, every
// request gets a new connection and a full handshake, so a swapped
// certificate shows on the next request.
func startTLSEcho(t *testing.T, name string, leaf *testpki.Leaf, fresh bool) *tlsEcho {
	t.Helper()
	e := &tlsEcho{}
	e.cert.Store(&leaf.TLS)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	base := &tls.Config{
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: fresh,
		GetCertificate:         func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return e.cert.Load(), nil },
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool := e.clientCA.Load()
		if pool == nil {
			return nil, nil
		}
		c := base.Clone()
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = pool
		return c, nil
	}
	h := echo.Handler(name)
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/healthz" {
				e.health.Add(1)
			}
			h(ctx)
		},
		DisableKeepalive: fresh,
		Logger:           quietLog{},
	}
	go func() { _ = s.Serve(tls.NewListener(ln, cfg)) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return e
}

// quietLog drops the upstream server's log: the tests provoke handshake
// failures on purpose.
type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

const upstreamTLSConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
upstreams:
  verified:
    targets: ["https://%[1]s"]
    tls: { ca_file: {{DIR}}/ca.pem, server_name: billing.internal }
    health_check: { path: /healthz, interval: 100ms }
  unverified:
    targets: ["https://%[1]s"]
    tls: { server_name: billing.internal }
    health_check: { path: /healthz, interval: 100ms }
  mtls:
    targets: ["https://%[2]s"]
    tls: { ca_file: {{DIR}}/ca.pem, cert_file: {{DIR}}/client.pem, key_file: {{DIR}}/client-key.pem }
  mtls-no-cert:
    targets: ["https://%[2]s"]
    tls: { ca_file: {{DIR}}/ca.pem, min_version: "1.3" }
routes:
  - { name: verified, match: { path_prefix: /verified/ }, upstream: verified }
  - { name: unverified, match: { path_prefix: /unverified/ }, upstream: unverified }
  - { name: mtls, match: { path_prefix: /mtls/ }, upstream: mtls }
  - { name: mtls-no-cert, match: { path_prefix: /mtls-no-cert/ }, upstream: mtls-no-cert }
`

// writePKI writes the CA bundle and the client certificate the gateway's
// configuration names into dir.
func writePKI(t *testing.T, dir string, ca *testpki.CA, client *testpki.Leaf) {
	t.Helper()
	testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	testpki.WriteFile(t, dir, "client.pem", client.CertPEM)
	testpki.WriteFile(t, dir, "client-key.pem", client.KeyPEM)
}

// startWithPKI writes the certificate files into a directory of their own,
// points {{DIR}} of cfg at it and starts gatewayd: the files must exist
// before the process reads its configuration.
func startWithPKI(t *testing.T, cfg string, ca *testpki.CA, client *testpki.Leaf) *gatewaytest.Process {
	t.Helper()
	dir := t.TempDir()
	writePKI(t, dir, ca, client)
	return gatewaytest.Start(t, strings.ReplaceAll(cfg, "{{DIR}}", dir))
}

func TestUpstreamTLS(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	clients := testpki.NewCA(t, "client CA")
	client := clients.Client(t, "gatewayd")
	billing := startTLSEcho(t, "billing", ca.Server(t, []string{"billing.internal"}), false)
	secure := startTLSEcho(t, "secure", ca.Server(t, []string{"127.0.0.1"}), false)
	secure.clientCA.Store(clients.Pool())
	gw := startWithPKI(t, fmt.Sprintf(upstreamTLSConfig, billing.addr, secure.addr), ca, client)

	t.Run("verified with ca_file and server_name", func(t *testing.T) {
		for range 3 {
			e := decodeEcho(t, do(t, "GET", gw.URL("/verified/x"), nil, ""))
			if e.Server != "billing" || e.Path != "/verified/x" {
				t.Fatalf("echo = %+v", e)
			}
		}
	})

	t.Run("unknown authority is a 502 with the reason logged", func(t *testing.T) {
		r := do(t, "GET", gw.URL("/unverified/x"), nil, "")
		if r.Status != 502 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		if e := decodeError(t, r); e.Error != "bad_gateway" || strings.Contains(string(r.Body), "x509") {
			t.Fatalf("body %s", r.Body)
		}
		want := `"upstream":"unverified","request_id":`
		if !gw.WaitLog(want, 5*time.Second) {
			t.Fatalf("no upstream failure log line")
		}
		var line string
		for _, l := range strings.Split(gw.Logs(), "\n") {
			if strings.Contains(l, "upstream request failed") && strings.Contains(l, want) {
				line = l
			}
		}
		for _, s := range []string{"x509: certificate signed by unknown authority", "https://" + billing.addr} {
			if !strings.Contains(line, s) {
				t.Errorf("log line lacks %q: %s", s, line)
			}
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		e := decodeEcho(t, do(t, "GET", gw.URL("/mtls/x"), nil, ""))
		if e.Server != "secure" {
			t.Fatalf("echo = %+v", e)
		}
		r := do(t, "GET", gw.URL("/mtls-no-cert/x"), nil, "")
		if r.Status != 502 || decodeError(t, r).Error != "bad_gateway" {
			t.Fatalf("without a client certificate: %d %s", r.Status, r.Body)
		}
		if !gw.WaitLog("remote error: tls: certificate required", 5*time.Second) {
			t.Error("the refusal's reason is not logged")
		}
	})

	t.Run("health checks use the TLS settings", func(t *testing.T) {
		// Both upstreams check the same target: the one that trusts the CA
		// reaches /healthz and keeps the target healthy; the other fails
		// its handshake and marks it down.
		deadline := time.Now().Add(5 * time.Second)
		for billing.health.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := billing.health.Load(); n < 3 {
			t.Fatalf("%d health checks reached the TLS upstream", n)
		}
		target := "https://" + billing.addr
		if v := metricValue(t, gw, `gateway_upstream_target_healthy{upstream="verified",target="`+target+`"}`); v != 1 {
			t.Errorf("verified target healthy = %v, want 1", v)
		}
		if !gw.WaitLog(`"msg":"upstream target failed its health check","upstream":"unverified"`, 5*time.Second) {
			t.Fatal("the unverified upstream's check did not fail")
		}
		if v := metricValue(t, gw, `gateway_upstream_target_healthy{upstream="unverified",target="`+target+`"}`); v != 0 {
			t.Errorf("unverified target healthy = %v, want 0", v)
		}
	})
}

const rotationConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
upstreams:
  billing:
    targets: ["https://%s"]
    tls: { ca_file: {{DIR}}/ca.pem, cert_file: {{DIR}}/client.pem, key_file: {{DIR}}/client-key.pem }
routes:
  - { name: billing, match: { path_prefix: / }, upstream: billing }
`

func TestUpstreamTLSRotationOnSIGHUP(t *testing.T) {
	ca1, ca2 := testpki.NewCA(t, "internal CA 1"), testpki.NewCA(t, "internal CA 2")
	clients1, clients2 := testpki.NewCA(t, "client CA 1"), testpki.NewCA(t, "client CA 2")
	up := startTLSEcho(t, "billing", ca1.Server(t, []string{"127.0.0.1"}), true)
	up.clientCA.Store(clients1.Pool())
	dir := t.TempDir()
	writePKI(t, dir, ca1, clients1.Client(t, "gatewayd"))
	gw := gatewaytest.Start(t, strings.ReplaceAll(fmt.Sprintf(rotationConfig, up.addr), "{{DIR}}", dir))
	if e := decodeEcho(t, do(t, "GET", gw.URL("/x"), nil, "")); e.Server != "billing" {
		t.Fatalf("echo = %+v", e)
	}

	// The upstream moves to certificates of new CAs, for its own and for the
	// clients it accepts: the gateway's old files no longer do.
	up.cert.Store(&ca2.Server(t, []string{"127.0.0.1"}).TLS)
	up.clientCA.Store(clients2.Pool())
	if r := do(t, "GET", gw.URL("/x"), nil, ""); r.Status != 502 {
		t.Fatalf("before the rotation: %d %s", r.Status, r.Body)
	}

	// A key that does not match its certificate fails the reload; the old
	// files keep serving (and failing against the moved upstream).
	newClient := clients2.Client(t, "gatewayd")
	testpki.WriteFile(t, dir, "client.pem", newClient.CertPEM)
	gw.Signal(syscall.SIGHUP)
	if !gw.WaitLog("private key does not match public key", 5*time.Second) {
		t.Fatal("the mismatched key was not reported")
	}

	// The rotated files take effect on the next SIGHUP; gateway.yaml did
	// not change.
	writePKI(t, dir, ca2, newClient)
	gw.Signal(syscall.SIGHUP)
	if !gw.WaitLog(`"msg":"configuration reloaded","source":"SIGHUP","summary":"upstreams changed: billing"`, 5*time.Second) {
		t.Fatalf("no successful reload")
	}
	if e := decodeEcho(t, do(t, "GET", gw.URL("/x"), nil, "")); e.Server != "billing" {
		t.Fatalf("after the rotation: %+v", e)
	}
	if got := metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`); got != 1 {
		t.Errorf("reload failures = %v, want 1", got)
	}
}

const insecureConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
upstreams:
  billing:
    targets: ["https://%s"]
    tls:
      insecure_skip_verify: true
routes:
  - { name: billing, match: { path_prefix: / }, upstream: billing }
`

func TestUpstreamTLSInsecureSkipVerifyWarns(t *testing.T) {
	ca := testpki.NewCA(t, "unknown CA")
	up := startTLSEcho(t, "billing", ca.Server(t, []string{"127.0.0.1"}), false)
	gw := gatewaytest.Start(t, fmt.Sprintf(insecureConfig, up.addr))
	warning := `upstreams.billing.tls.insecure_skip_verify: warning: the certificates of upstream \"billing\" are not verified`

	code, out := gatewaytest.RunCheck(t, gw.ConfigPath)
	if code != 0 || !strings.HasSuffix(out, "configuration OK\n") {
		t.Fatalf("-check exit %d:\n%s", code, out)
	}
	if want := gw.ConfigPath + ":9: " + strings.ReplaceAll(warning, `\"`, `"`); !strings.Contains(out, want) {
		t.Errorf("-check output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(gw.Logs(), warning) {
		t.Errorf("the warning is not in the start log:\n%s", gw.Logs())
	}
	// Not verified, so served.
	if e := decodeEcho(t, do(t, "GET", gw.URL("/x"), nil, "")); e.Server != "billing" {
		t.Fatalf("echo = %+v", e)
	}
}
