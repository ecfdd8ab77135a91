package proxy

import (
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatewayd/gatewayd/internal/testpki"
)

// startTLSBackend serves h over TLS with cfg on a loopback port and returns
// the backend with its https URL.
func startTLSBackend(t testing.TB, cfg *tls.Config, h fasthttp.RequestHandler) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	b := serveBackend(t, tls.NewListener(ln, cfg), h)
	b.url = "https://" + b.addr
	return b
}

// serverConfig serves leaf.
func serverConfig(leaf *testpki.Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
}

func TestTLSTargetVerification(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	other := testpki.NewCA(t, "other CA")
	ipCert := ca.Server(t, []string{"127.0.0.1"})
	nameCert := ca.Server(t, []string{"billing.internal"})
	expired := ca.Server(t, []string{"127.0.0.1"}, testpki.Options{NotAfter: time.Now().Add(-time.Minute)})
	hello := func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("secure " + string(ctx.Host())) }
	byIP := startTLSBackend(t, serverConfig(ipCert), hello)
	byName := startTLSBackend(t, serverConfig(nameCert), hello)
	old := startTLSBackend(t, serverConfig(expired), hello)

	tests := []struct {
		name      string
		giveURL   string
		giveTLS   *TLS
		wantBody  string
		wantError string // substring of the error; "" means success
	}{
		{name: "private CA", giveURL: byIP.url, giveTLS: &TLS{CA: ca.PEM}, wantBody: "secure " + byIP.addr},
		{name: "system roots do not know the CA", giveURL: byIP.url, wantError: "x509: certificate signed by unknown authority"},
		{name: "another CA", giveURL: byIP.url, giveTLS: &TLS{CA: other.PEM}, wantError: "x509: certificate signed by unknown authority"},
		{name: "server name", giveURL: byName.url, giveTLS: &TLS{CA: ca.PEM, ServerName: "billing.internal"}, wantBody: "secure " + byName.addr},
		{name: "target host is not in the certificate", giveURL: byName.url, giveTLS: &TLS{CA: ca.PEM}, wantError: "x509: cannot validate certificate for 127.0.0.1"},
		{name: "wrong server name", giveURL: byName.url, giveTLS: &TLS{CA: ca.PEM, ServerName: "users.internal"}, wantError: "x509: certificate is valid for billing.internal, not users.internal"},
		{name: "expired", giveURL: old.url, giveTLS: &TLS{CA: ca.PEM}, wantError: "x509: certificate has expired"},
		{name: "insecure skip verify", giveURL: old.url, giveTLS: &TLS{InsecureSkipVerify: true}, wantBody: "secure " + old.addr},
		{name: "TLS 1.3", giveURL: byIP.url, giveTLS: &TLS{CA: ca.PEM, MinVersion: TLSVersion13}, wantBody: "secure " + byIP.addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newTestUpstream(t, Config{Targets: []string{tt.giveURL}, TLS: tt.giveTLS, EjectAfter: -1})
			body, err := get(t, u, fasthttp.MethodGet, "/")
			if tt.wantError == "" {
				if err != nil || body != tt.wantBody {
					t.Fatalf("body %q, err %v; want %q", body, err, tt.wantBody)
				}
				return
			}
			mustKind(t, err, ErrBadGateway)
			if !isConnectError(err) {
				t.Errorf("verification failure %v is not a connect error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.wantError) || !strings.Contains(msg, tt.giveURL) {
				t.Errorf("error %q does not name the target and %q", msg, tt.wantError)
			}
			if status, code := Classify(err); status != fasthttp.StatusBadGateway || code != "bad_gateway" {
				t.Errorf("Classify = %d %s, want 502 bad_gateway", status, code)
			}
		})
	}
}

func TestTLSMinVersion13RefusesTLS12Target(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	cfg := serverConfig(ca.Server(t, []string{"127.0.0.1"}))
	cfg.MaxVersion = tls.VersionTLS12
	b := startTLSBackend(t, cfg, textHandler("ok"))
	u := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM, MinVersion: TLSVersion13}})
	_, err := get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrBadGateway)
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("error %v does not mention the protocol version", err)
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	clients := testpki.NewCA(t, "client CA")
	client := clients.Client(t, "gatewayd")
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cfg := serverConfig(ca.Server(t, []string{"127.0.0.1"}))
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
			cfg.ClientCAs = clients.Pool()
			cfg.MinVersion, cfg.MaxVersion = version, version
			b := startTLSBackend(t, cfg, func(ctx *fasthttp.RequestCtx) {
				st := ctx.Conn().(*tls.Conn).ConnectionState()
				ctx.SetBodyString("hello " + st.PeerCertificates[0].Subject.CommonName)
			})

			u := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM, Cert: client.CertPEM, Key: client.KeyPEM}})
			if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || body != "hello gatewayd" {
				t.Fatalf("with a client certificate: body %q, err %v", body, err)
			}

			// The target refuses the handshake (TLS 1.2) or, with TLS 1.3,
			// the first read after it: a 502 either way.
			u2 := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM}})
			_, err := get(t, u2, fasthttp.MethodGet, "/")
			mustKind(t, err, ErrBadGateway)
			wantReason := "remote error: tls: handshake failure"
			if version == tls.VersionTLS13 {
				wantReason = "remote error: tls: certificate required"
			}
			if !strings.Contains(err.Error(), wantReason) {
				t.Errorf("error %v does not give the reason %q", err, wantReason)
			}
		})
	}
}

func TestTLSConnectionsAreReusedAndSessionsResumed(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	var resumed atomic.Int64
	b := startTLSBackend(t, serverConfig(ca.Server(t, []string{"127.0.0.1"})), func(ctx *fasthttp.RequestCtx) {
		if ctx.Conn().(*tls.Conn).ConnectionState().DidResume {
			resumed.Add(1)
		}
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM}})
	for range 5 {
		if _, err := get(t, u, fasthttp.MethodGet, "/"); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("5 sequential requests used %d connections, want 1 (keep-alive)", n)
	}
	// A new connection resumes the session of the first.
	u.targets[0].hc.CloseIdleConnections()
	if _, err := get(t, u, fasthttp.MethodGet, "/"); err != nil {
		t.Fatal(err)
	}
	if n := b.conns.Load(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
	if resumed.Load() == 0 {
		t.Error("the second connection did not resume the TLS session")
	}
}

func TestTLSHealthCheck(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	b := startTLSBackend(t, serverConfig(ca.Server(t, []string{"127.0.0.1"})), func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/healthz" {
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	})
	// A timeout a TLS handshake meets on a loaded machine under -race; the
	// failing case fails at once on verification, not by timing out.
	hc := &HealthCheck{Path: "/healthz", Interval: 100 * time.Millisecond, Timeout: 100 * time.Millisecond}

	// Verified with the configured CA, the check passes.
	good := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM}, HealthCheck: hc})
	before := b.hits.Load()
	waitFor(t, "a passing check", func() bool { return b.hits.Load() > before+1 })
	if !good.targets[0].healthy.Load() {
		t.Error("target failed its health check over TLS")
	}

	// Against the system roots the handshake fails, so does the check.
	bad := newTestUpstream(t, Config{Targets: []string{b.url}, HealthCheck: hc})
	waitFor(t, "a failing check", func() bool { return !bad.targets[0].healthy.Load() })
}

func TestTLSConfigKey(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	ca2 := testpki.NewCA(t, "internal CA")
	client := ca.Client(t, "gatewayd")
	client2 := ca.Client(t, "gatewayd")
	base := Config{Name: "billing", Targets: []string{"https://billing.internal:8443"}}
	with := func(tc *TLS) Config { c := base; c.TLS = tc; return c }

	tests := []struct {
		name     string
		give     Config
		wantSame bool
	}{
		{name: "same content", give: with(&TLS{CA: append([]byte(nil), ca.PEM...)}), wantSame: true},
		{name: "default min version", give: with(&TLS{CA: ca.PEM, MinVersion: TLSVersion12}), wantSame: true},
		{name: "no tls section", give: base},
		{name: "rotated CA", give: with(&TLS{CA: ca2.PEM})},
		{name: "client certificate", give: with(&TLS{CA: ca.PEM, Cert: client.CertPEM, Key: client.KeyPEM})},
		{name: "server name", give: with(&TLS{CA: ca.PEM, ServerName: "billing"})},
		{name: "min version", give: with(&TLS{CA: ca.PEM, MinVersion: TLSVersion13})},
		{name: "insecure", give: with(&TLS{CA: ca.PEM, InsecureSkipVerify: true})},
	}
	ref := with(&TLS{CA: ca.PEM}).Key()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.give.Key() == ref; got != tt.wantSame {
				t.Errorf("same key = %v, want %v\n%s\n%s", got, tt.wantSame, tt.give.Key(), ref)
			}
		})
	}
	// A rotated client certificate changes the key too.
	k1 := with(&TLS{Cert: client.CertPEM, Key: client.KeyPEM}).Key()
	k2 := with(&TLS{Cert: client2.CertPEM, Key: client2.KeyPEM}).Key()
	if k1 == k2 {
		t.Error("a rotated client certificate kept the key")
	}
	if strings.Contains(k1, "PRIVATE KEY") {
		t.Error("the key holds PEM content")
	}
}

func TestTLSConfigInvalid(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	client := ca.Client(t, "gatewayd")
	stranger := ca.Client(t, "someone else")
	https := []string{"https://127.0.0.1:8443"}
	tests := []struct {
		name    string
		give    Config
		wantErr string
	}{
		{name: "tls on http targets", give: Config{Targets: []string{"http://127.0.0.1:9002"}, TLS: &TLS{}},
			wantErr: "tls: applies to https targets only, and every target is http"},
		{name: "mixed schemes", give: Config{Targets: []string{"http://127.0.0.1:9002", "https://127.0.0.1:9003"}},
			wantErr: "targets: mix http and https targets"},
		{name: "not PEM", give: Config{Targets: https, TLS: &TLS{CA: []byte("not a certificate")}},
			wantErr: "tls.ca_file: no PEM certificate found"},
		{name: "key in the CA bundle", give: Config{Targets: https, TLS: &TLS{CA: append(append([]byte(nil), ca.PEM...), client.KeyPEM...)}},
			wantErr: `tls.ca_file: PEM block 2 is a "PRIVATE KEY", expected CERTIFICATE`},
		{name: "key without certificate", give: Config{Targets: https, TLS: &TLS{Key: client.KeyPEM}},
			wantErr: "tls.cert_file: required with key_file"},
		{name: "certificate without key", give: Config{Targets: https, TLS: &TLS{Cert: client.CertPEM}},
			wantErr: "tls.key_file: required with cert_file"},
		{name: "key of another certificate", give: Config{Targets: https, TLS: &TLS{Cert: client.CertPEM, Key: stranger.KeyPEM}},
			wantErr: "tls.cert_file: cannot load the certificate with its key: tls: private key does not match public key"},
		{name: "min version", give: Config{Targets: https, TLS: &TLS{MinVersion: "1.1"}},
			wantErr: `tls.min_version: expected "1.2" or "1.3", got "1.1"`},
		{name: "server name", give: Config{Targets: https, TLS: &TLS{ServerName: "billing.internal:8443"}},
			wantErr: `tls.server_name: expected a host name or IP address, got "billing.internal:8443"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Name = "billing"
			_, err := New(tt.give, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
