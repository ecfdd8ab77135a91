package gateway

import (
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/testpki"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// tlsUpstream serves "ok" over TLS on a loopback port with the certificate
// cert holds, which a test may swap. Every request gets a new connection
// and a full handshake, so a swap shows on the next request.
func tlsUpstream(t *testing.T, cert *atomic.Pointer[tls.Certificate]) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(ln, &tls.Config{
		MinVersion:             tls.VersionTLS12,
		SessionTicketsDisabled: true,
		GetCertificate:         func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Load(), nil },
	})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, CloseOnShutdown: true, DisableKeepalive: true, Logger: discardLog{}}
	go func() { _ = srv.Serve(tl) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// discardLog drops the upstream server's log: the test provokes handshake
// failures.
type discardLog struct{}

func (discardLog) Printf(string, ...any) {}

// serve sends one GET through gw and returns the status and body.
func serve(gw *Gateway) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	ctx.Request.SetRequestURI("/x")
	gw.Handle(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func TestUpstreamTLSReloadRereadsFiles(t *testing.T) {
	ca1 := testpki.NewCA(t, "CA one")
	ca2 := testpki.NewCA(t, "CA two")
	var cert atomic.Pointer[tls.Certificate]
	cert.Store(&ca1.Server(t, []string{"billing.internal"}).TLS)
	addr := tlsUpstream(t, &cert)

	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca1.PEM)
	file := testpki.WriteFile(t, dir, "gateway.yaml", []byte(`
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:1" }
log: { access_log: false }
upstreams:
  billing:
    targets: ["https://`+addr+`"]
    tls: { ca_file: `+caFile+`, server_name: billing.internal }
routes: [{ name: r, match: { path_prefix: / }, upstream: billing }]
`))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = gw.Shutdown(0, time.Second) }()
	if status, body := serve(gw); status != 200 || body != "ok" {
		t.Fatalf("verified upstream: %d %s", status, body)
	}
	upstream := gw.cur.Load().routes[0].upstream

	// The upstream moves to a certificate from another CA: 502 until the
	// CA file is rotated and the gateway reloaded, with gateway.yaml itself
	// unchanged.
	cert.Store(&ca2.Server(t, []string{"billing.internal"}).TLS)
	if status, body := serve(gw); status != 502 || !strings.Contains(body, `"error":"bad_gateway"`) {
		t.Fatalf("after the upstream's rotation: %d %s", status, body)
	}
	testpki.WriteFile(t, dir, "ca.pem", ca2.PEM)
	res, err := gw.Reload()
	if err != nil || res.Unchanged || res.String() != "upstreams changed: billing" {
		t.Fatalf("reload after a CA rotation: %+v, %v", res, err)
	}
	if status, body := serve(gw); status != 200 {
		t.Fatalf("after the reload: %d %s", status, body)
	}
	if gw.cur.Load().routes[0].upstream == upstream {
		t.Error("the reload kept the upstream built with the old CA")
	}

	// A CA file that is no longer PEM fails the reload; the old CA keeps
	// serving.
	testpki.WriteFile(t, dir, "ca.pem", []byte("garbage"))
	_, err = gw.Reload()
	if err == nil || !strings.Contains(err.Error(), "upstreams.billing.tls.ca_file: "+caFile+": no PEM certificate found") {
		t.Fatalf("reload with a bad CA file: %v", err)
	}
	if status, _ := serve(gw); status != 200 {
		t.Fatalf("after the failed reload: %d", status)
	}
	// Back to the CA the live configuration was built with: nothing to do.
	testpki.WriteFile(t, dir, "ca.pem", ca2.PEM)
	if res, err := gw.Reload(); err != nil || !res.Unchanged {
		t.Fatalf("reload back to the live CA: %+v, %v", res, err)
	}
}

func TestUpstreamTLSCheck(t *testing.T) {
	ca := testpki.NewCA(t, "CA")
	client := ca.Client(t, "gatewayd")
	other := ca.Client(t, "other")
	expired := ca.Client(t, "gatewayd", testpki.Options{NotAfter: time.Now().Add(-time.Hour)})
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	certFile := testpki.WriteFile(t, dir, "client.pem", client.CertPEM)
	keyFile := testpki.WriteFile(t, dir, "client-key.pem", client.KeyPEM)
	otherKey := testpki.WriteFile(t, dir, "other-key.pem", other.KeyPEM)
	expiredCert := testpki.WriteFile(t, dir, "expired.pem", expired.CertPEM)
	expiredKey := testpki.WriteFile(t, dir, "expired-key.pem", expired.KeyPEM)
	keyAsCA := testpki.WriteFile(t, dir, "key-as-ca.pem", client.KeyPEM)

	tests := []struct {
		name         string
		giveTLS      string
		wantErr      string
		wantWarnings string
	}{
		{name: "client certificate", giveTLS: "{ ca_file: " + caFile + ", cert_file: " + certFile + ", key_file: " + keyFile + " }"},
		{name: "key of another certificate", giveTLS: "{ cert_file: " + certFile + ", key_file: " + otherKey + " }",
			wantErr: "gateway.yaml:4: upstreams.billing.tls.cert_file: " + certFile + " with key_file " + otherKey +
				": cannot load the certificate with its key: tls: private key does not match public key"},
		{name: "key as CA bundle", giveTLS: "{ ca_file: " + keyAsCA + " }",
			wantErr: "gateway.yaml:4: upstreams.billing.tls.ca_file: " + keyAsCA + `: PEM block 1 is a "PRIVATE KEY", expected CERTIFICATE`},
		{name: "expired client certificate", giveTLS: "{ cert_file: " + expiredCert + ", key_file: " + expiredKey + " }",
			wantWarnings: "gateway.yaml:4: upstreams.billing.tls.cert_file: warning: the client certificate " + expiredCert + " expired at " +
				expired.TLS.Leaf.NotAfter.UTC().Format(time.RFC3339) + ": targets that check it refuse the connection"},
		{name: "insecure", giveTLS: "{ insecure_skip_verify: true }",
			wantWarnings: `gateway.yaml:4: upstreams.billing.tls.insecure_skip_verify: warning: the certificates of upstream "billing" are not verified: ` +
				"anyone on the network path can impersonate its targets and read the traffic; trust their CA with ca_file instead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("gateway.yaml", []byte("upstreams:\n  billing:\n    targets: [\"https://billing.internal:8443\"]\n    tls: "+tt.giveTLS+
				"\nroutes: [{ name: r, match: { path_prefix: / }, upstream: billing }]\n"))
			ws, err := CheckWarnings(cfg, err, builtin.Registry())
			var gotErrs, gotWarnings []string
			for _, e := range config.Errors(err) {
				gotErrs = append(gotErrs, e.Error())
			}
			for _, w := range ws {
				gotWarnings = append(gotWarnings, w.String())
			}
			if got := strings.Join(gotErrs, "\n"); got != tt.wantErr {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.wantErr)
			}
			if got := strings.Join(gotWarnings, "\n"); got != tt.wantWarnings {
				t.Errorf("warnings:\n%s\nwant:\n%s", got, tt.wantWarnings)
			}
		})
	}
}
