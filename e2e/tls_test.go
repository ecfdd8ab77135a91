package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gorilla/websocket"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = time.Now().UnixNano()

func nextSerial() *big.Int {
	serial++
	return big.NewInt(serial)
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leafSpec describes a certificate issued by a testCA.
type leafSpec struct {
	cn       string
	dns      []string
	uris     []string
	client   bool
	notAfter time.Time
}

// issue returns the PEM certificate and key of a leaf for spec.
func (ca *testCA) issue(t *testing.T, spec leafSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: spec.cn},
		DNSNames:     spec.dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     spec.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if spec.client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, u := range spec.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeFiles writes name -> content into dir and returns dir.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		// Write and rename, as deployment tools do, so the gateway never
		// reads a half-written file.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsClient returns a client that trusts ca, asks for serverName and
// presents cert when given, whatever CAs the server says it accepts (Go's
// client would otherwise send none that the server's list does not name).
func tlsClient(ca *testCA, serverName string, cert ...tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: serverName}
	if len(cert) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert[0], nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// handshake connects to addr with cfg and returns the server's leaf
// certificate's CN, or the handshake error.
func handshake(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func pool(ca *testCA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

const tlsConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server: { header_timeout: 1s, shutdown_timeout: 5s }
log: { level: info, access_log: false }
tls:
%s
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: api
    match: { path_prefix: / }
    upstream: echo
    plugins: [request-id, { security-headers: { hsts: true } }]
`

func startTLS(t *testing.T, tlsSection string, opts ...gatewaytest.Options) *gatewaytest.Process {
	t.Helper()
	return gatewaytest.Start(t, fmt.Sprintf(tlsConfig, tlsSection, startEcho(t, "echo")), opts...)
}

// TestTLSServesBySNI: the certificate follows the server name (exact and
// wildcard), the first is the default, TLS below 1.2 is refused, requests
// go upstream with X-Forwarded-Proto: https and get HSTS, and a client
// that never completes the handshake is closed after header_timeout.
func TestTLSServesBySNI(t *testing.T) {
	ca := newTestCA(t, "e2e test CA")
	dir := t.TempDir()
	apiCert, apiKey := ca.issue(t, leafSpec{cn: "api", dns: []string{"api.example.test"}})
	adminCert, adminKey := ca.issue(t, leafSpec{cn: "admin", dns: []string{"admin.example.test", "*.tenants.example.test"}})
	writeFiles(t, dir, map[string][]byte{"api.pem": apiCert, "api-key.pem": apiKey, "admin.pem": adminCert, "admin-key.pem": adminKey})
	gw := startTLS(t, fmt.Sprintf(`  certificates:
    - { cert_file: %[1]s/api.pem, key_file: %[1]s/api-key.pem }
    - { cert_file: %[1]s/admin.pem, key_file: %[1]s/admin-key.pem }`, dir))

	tests := []struct {
		name     string
		giveSNI  string
		wantCert string
	}{
		{name: "exact first", giveSNI: "api.example.test", wantCert: "api"},
		{name: "exact second", giveSNI: "admin.example.test", wantCert: "admin"},
		{name: "case and trailing dot", giveSNI: "ADMIN.example.test", wantCert: "admin"},
		{name: "wildcard", giveSNI: "acme.tenants.example.test", wantCert: "admin"},
		{name: "wildcard covers one label only", giveSNI: "a.b.tenants.example.test", wantCert: "api"},
		{name: "unknown name gets the default", giveSNI: "other.example.test", wantCert: "api"},
		{name: "no SNI gets the default", giveSNI: "", wantCert: "api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := handshake(gw.Addr, &tls.Config{ServerName: tt.giveSNI, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantCert {
				t.Fatalf("SNI %q got certificate %q, want %q", tt.giveSNI, got, tt.wantCert)
			}
		})
	}

	t.Run("verified request", func(t *testing.T) {
		c := tlsClient(ca, "api.example.test")
		resp, err := c.Get("https://" + gw.Addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		e := decodeEcho(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
		if got := header(e, "X-Forwarded-Proto"); got != "https" {
			t.Fatalf("X-Forwarded-Proto = %q, want https", got)
		}
		if resp.Header.Get("Strict-Transport-Security") == "" {
			t.Fatal("no HSTS on a TLS response")
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("connection state %+v", resp.TLS)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		_, err := handshake(gw.Addr, &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca),
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("ALPN offers http/1.1 only", func(t *testing.T) {
		c, err := tls.Dial("tcp", gw.Addr, &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca), NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Fatalf("negotiated %q, want http/1.1", p)
		}
	})

	t.Run("silent client closed after header_timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", gw.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Nothing is sent: the handshake never starts. The server closes
		// the connection (header_timeout is 1s); the deadline here is only
		// a bound for a broken server.
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err == nil || isTimeout(err) {
			t.Fatalf("connection not closed by the server: %v", err)
		}
	})
}

func TestTLSMinVersion13(t *testing.T) {
	ca := newTestCA(t, "e2e test CA")
	dir := t.TempDir()
	cert, key := ca.issue(t, leafSpec{cn: "api", dns: []string{"api.example.test"}})
	writeFiles(t, dir, map[string][]byte{"api.pem": cert, "api-key.pem": key})
	gw := startTLS(t, fmt.Sprintf(`  min_version: "1.3"
  certificates: [{ cert_file: %[1]s/api.pem, key_file: %[1]s/api-key.pem }]`, dir))
	cfg := &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca)}
	if _, err := handshake(gw.Addr, cfg); err != nil {
		t.Fatalf("TLS 1.3 client refused: %v", err)
	}
	cfg.MaxVersion = tls.VersionTLS12
	if _, err := handshake(gw.Addr, cfg); err == nil {
		t.Fatal("a TLS 1.2-only client was served with min_version 1.3")
	}
}

// keptAlive is one TLS connection used for several requests.
type keptAlive struct {
	c  *tls.Conn
	br *bufio.Reader
}

func (k *keptAlive) get(t *testing.T, path string) int {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: rot.example.test\r\n\r\n"); err != nil {
		t.Fatalf("write on the kept-alive connection: %v", err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("read on the kept-alive connection: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTLSCertificateReload: new files and a SIGHUP serve the new
// certificate to new connections while an open keep-alive connection
// carries on; a mismatched pair fails the reload and keeps the old one;
// the expiry metric follows the served set.
func TestTLSCertificateReload(t *testing.T) {
	ca := newTestCA(t, "e2e test CA")
	dir := t.TempDir()
	certA, keyA := ca.issue(t, leafSpec{cn: "rot-a", dns: []string{"rot.example.test"}, notAfter: time.Now().Add(10 * 24 * time.Hour)})
	writeFiles(t, dir, map[string][]byte{"rot.pem": certA, "rot-key.pem": keyA})
	section := fmt.Sprintf(`  certificates: [{ cert_file: %[1]s/rot.pem, key_file: %[1]s/rot-key.pem }]`, dir)
	gw := startTLS(t, section)
	cfg := &tls.Config{ServerName: "rot.example.test", RootCAs: pool(ca)}

	if got, err := handshake(gw.Addr, cfg); err != nil || got != "rot-a" {
		t.Fatalf("before reload: %q %v", got, err)
	}
	expiry := metricValue(t, gw, `gateway_tls_certificate_expiry_seconds{name="rot-a"}`)
	if expiry < 9*86400 || expiry > 10*86400 {
		t.Fatalf("expiry metric of rot-a = %v, want about 10 days", expiry)
	}
	c, err := tls.Dial("tcp", gw.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kept := &keptAlive{c: c, br: bufio.NewReader(c)}
	if st := kept.get(t, "/before"); st != 200 {
		t.Fatalf("status %d", st)
	}

	certB, keyB := ca.issue(t, leafSpec{cn: "rot-b", dns: []string{"rot.example.test"}})
	writeFiles(t, dir, map[string][]byte{"rot.pem": certB, "rot-key.pem": keyB})
	gw.Signal(syscall.SIGHUP)
	if !gw.WaitLog(`"source":"SIGHUP"`, 5*time.Second) {
		t.Fatal("no reload log after SIGHUP")
	}
	if got, err := handshake(gw.Addr, cfg); err != nil || got != "rot-b" {
		t.Fatalf("after reload a new connection got %q (%v), want rot-b", got, err)
	}
	if st := kept.get(t, "/after"); st != 200 {
		t.Fatalf("kept-alive connection after reload: status %d", st)
	}
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "rot-a" {
		t.Fatalf("kept-alive connection's certificate %q", cn)
	}
	metrics := string(do(t, "GET", gw.AdminURL("/metrics"), nil, "").Body)
	if !strings.Contains(metrics, `gateway_tls_certificate_expiry_seconds{name="rot-b"}`) || strings.Contains(metrics, `name="rot-a"`) {
		t.Fatalf("expiry series after rotation:\n%s", grepLines(metrics, "gateway_tls_"))
	}

	// A key that does not match its certificate: the reload fails.
	failures := metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`)
	_, keyC := ca.issue(t, leafSpec{cn: "rot-c", dns: []string{"rot.example.test"}})
	writeFiles(t, dir, map[string][]byte{"rot-key.pem": keyC})
	// The configuration file is the same: the changed key file alone
	// makes the reload build a new generation.
	status, body := reload(t, gw)
	if status == 200 || !strings.Contains(body, "does not match") {
		t.Fatalf("reload with a mismatched pair: %d %s", status, body)
	}
	if got := metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`); got != failures+1 {
		t.Fatalf("failed reloads %v, want %v", got, failures+1)
	}
	if got, err := handshake(gw.Addr, cfg); err != nil || got != "rot-b" {
		t.Fatalf("after a failed reload a new connection got %q (%v), want rot-b", got, err)
	}
	if st := kept.get(t, "/still"); st != 200 {
		t.Fatalf("kept-alive connection after a failed reload: status %d", st)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestTLSClientCertificates: client_auth require refuses clients without a
// certificate signed by client_ca_file, and forward_client_cert sends the
// verified subject upstream while client-sent copies are dropped.
func TestTLSClientCertificates(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server CA"), newTestCA(t, "client CA"), newTestCA(t, "other CA")
	dir := t.TempDir()
	cert, key := serverCA.issue(t, leafSpec{cn: "api", dns: []string{"api.example.test"}})
	writeFiles(t, dir, map[string][]byte{"api.pem": cert, "api-key.pem": key, "clients.pem": clientCA.pem})
	gw := startTLS(t, fmt.Sprintf(`  certificates: [{ cert_file: %[1]s/api.pem, key_file: %[1]s/api-key.pem }]
  client_ca_file: %[1]s/clients.pem
  client_auth: require
  forward_client_cert: X-Client-Cert-Subject`, dir))

	pair := func(ca *testCA, spec leafSpec) tls.Certificate {
		c, k := ca.issue(t, spec)
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	url := "https://" + gw.Addr + "/who"

	if resp, err := tlsClient(serverCA, "api.example.test").Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate was served: %d", resp.StatusCode)
	}
	stranger := pair(otherCA, leafSpec{cn: "mallory", client: true})
	if resp, err := tlsClient(serverCA, "api.example.test", stranger).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("a client certificate from another CA was accepted: %d", resp.StatusCode)
	}

	alice := pair(clientCA, leafSpec{cn: "alice", dns: []string{"alice.example.test"}, uris: []string{"spiffe://example.test/alice"}, client: true})
	c := tlsClient(serverCA, "api.example.test", alice)
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Client-Cert-Subject", "CN=admin")
	req.Header["X_Client_Cert_Subject"] = []string{"CN=root"}
	req.Header["x-client-cert-subject"] = []string{"CN=forged"}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	e := decodeEcho(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	if got, want := header(e, "X-Client-Cert-Subject"), "CN=alice;DNS=alice.example.test;URI=spiffe://example.test/alice"; got != want {
		t.Fatalf("X-Client-Cert-Subject = %q, want %q", got, want)
	}
	for name, vs := range e.Headers {
		for _, v := range vs {
			if v == "CN=admin" || v == "CN=root" || v == "CN=forged" {
				t.Fatalf("client-sent %s: %s reached the upstream", name, v)
			}
		}
	}

	// client_auth: request, applied by a reload: a client without a
	// certificate is served (and its copy of the header still dropped),
	// one with a certificate still gets it forwarded.
	cfgData, err := os.ReadFile(gw.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	gw.WriteConfig(strings.Replace(string(cfgData), "client_auth: require", "client_auth: request", 1))
	if status, body := reload(t, gw); status != 200 {
		t.Fatalf("reload to client_auth: request: %d %s", status, body)
	}
	anon, _ := http.NewRequest("GET", url, nil)
	anon.Header.Set("X-Client-Cert-Subject", "CN=admin")
	resp, err = tlsClient(serverCA, "api.example.test").Do(anon)
	if err != nil {
		t.Fatalf("client without a certificate refused under client_auth: request: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	e = decodeEcho(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	if got := header(e, "X-Client-Cert-Subject"); got != "" {
		t.Fatalf("X-Client-Cert-Subject = %q without a client certificate", got)
	}
	resp, err = tlsClient(serverCA, "api.example.test", alice).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	e = decodeEcho(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	if got := header(e, "X-Client-Cert-Subject"); !strings.HasPrefix(got, "CN=alice;") {
		t.Fatalf("X-Client-Cert-Subject = %q under client_auth: request", got)
	}
	if resp, err := tlsClient(serverCA, "api.example.test", stranger).Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("a client certificate that does not verify was accepted under client_auth: request: %d", resp.StatusCode)
	}
}

// TestTLSRedirectAndCaps: redirect_http answers 308 to the https URL and
// refuses hosts that are not hosts; a TLS connection over the per-IP cap
// gets the JSON 503 after its handshake.
func TestTLSRedirectAndCaps(t *testing.T) {
	ca := newTestCA(t, "e2e test CA")
	dir := t.TempDir()
	cert, key := ca.issue(t, leafSpec{cn: "api", dns: []string{"api.example.test"}})
	writeFiles(t, dir, map[string][]byte{"api.pem": cert, "api-key.pem": key})
	redirectAddr := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	cfg := fmt.Sprintf(tlsConfig, fmt.Sprintf(`  certificates: [{ cert_file: %[1]s/api.pem, key_file: %[1]s/api-key.pem }]`, dir), startEcho(t, "echo"))
	cfg = strings.Replace(cfg, "server: { header_timeout: 1s,", "redirect_http: \""+redirectAddr+"\"\nserver: { max_connections_per_ip: 1, header_timeout: 1s,", 1)
	gw := gatewaytest.Start(t, cfg)
	_, tlsPort, _ := net.SplitHostPort(gw.Addr)

	tests := []struct {
		name         string
		giveHost     string
		giveTarget   string
		wantStatus   string
		wantLocation string
	}{
		{name: "host with port", giveHost: "Api.Example.test:8080", giveTarget: "/a/b?x=1&y=%2F",
			wantStatus: "308", wantLocation: "https://api.example.test:" + tlsPort + "/a/b?x=1&y=%2F"},
		{name: "ipv4", giveHost: "127.0.0.1", giveTarget: "/", wantStatus: "308", wantLocation: "https://127.0.0.1:" + tlsPort + "/"},
		{name: "ipv6", giveHost: "[::1]:80", giveTarget: "/p", wantStatus: "308", wantLocation: "https://[::1]:" + tlsPort + "/p"},
		{name: "absolute target keeps the path only", giveHost: "api.example.test", giveTarget: "http://other.test//evil.test/x",
			wantStatus: "308", wantLocation: "https://api.example.test:" + tlsPort + "/evil.test/x"},
		{name: "empty host", giveHost: "", giveTarget: "/", wantStatus: "400"},
		{name: "host with a path", giveHost: "evil.test/x", giveTarget: "/", wantStatus: "400"},
		{name: "host with userinfo", giveHost: "user@evil.test", giveTarget: "/", wantStatus: "400"},
		{name: "bad port", giveHost: "api.example.test:80x", giveTarget: "/", wantStatus: "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, _ := rawRequest(t, redirectAddr, "GET "+tt.giveTarget+" HTTP/1.1\r\nHost: "+tt.giveHost+"\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(status, tt.wantStatus) {
				t.Fatalf("status %q, want %s\n%s", status, tt.wantStatus, hdr)
			}
			if tt.wantLocation != "" && !strings.Contains(hdr, "Location: "+tt.wantLocation+"\r\n") {
				t.Fatalf("headers:\n%s\nwant Location %s", hdr, tt.wantLocation)
			}
			if tt.wantStatus == "400" && !strings.Contains(hdr, `"error":"bad_request"`) {
				t.Fatalf("400 without the JSON body:\n%s", hdr)
			}
		})
	}

	// One connection is the cap: a second TLS connection from this
	// address is answered 503 in JSON, over TLS.
	held, err := tls.Dial("tcp", gw.Addr, &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca)})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	over, err := tls.Dial("tcp", gw.Addr, &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca)})
	if err != nil {
		t.Fatalf("the over-cap connection's handshake: %v", err)
	}
	defer over.Close()
	_ = over.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(over, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("no answer on the over-cap connection: %v", err)
	}
	defer resp.Body.Close()
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 503 || e.Error != "unavailable" {
		t.Fatalf("over-cap answer %d %+v %v", resp.StatusCode, e, err)
	}
}

// TestTLSWebSocket: a WebSocket over the TLS listener (wss) is tunnelled
// like one over plain HTTP, the upstream told X-Forwarded-Proto: https.
func TestTLSWebSocket(t *testing.T) {
	ca := newTestCA(t, "e2e test CA")
	dir := t.TempDir()
	cert, key := ca.issue(t, leafSpec{cn: "api", dns: []string{"api.example.test"}})
	writeFiles(t, dir, map[string][]byte{"api.pem": cert, "api-key.pem": key})
	up := startWSUpstream(t)
	gw := gatewaytest.Start(t, fmt.Sprintf(`
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server: { shutdown_timeout: 2s }
tls: { certificates: [{ cert_file: %[1]s/api.pem, key_file: %[1]s/api-key.pem }] }
upstreams:
  ws: { targets: ["http://%[2]s"] }
routes:
  - name: open
    match: { path_prefix: /ws/ }
    upstream: ws
    websocket: true
    plugins: [request-id]
`, dir, up.addr))
	d := *wsDialer
	d.TLSClientConfig = &tls.Config{ServerName: "api.example.test", RootCAs: pool(ca)}
	c, resp, err := d.Dial("wss://"+gw.Addr+"/ws/x", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	defer c.Close()
	if resp.Header.Get("X-Seen-Request-Id") == "" {
		t.Fatalf("the handshake did not run the route's plugins: %v", resp.Header)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"hello", strings.Repeat("x", 100000)} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
}
