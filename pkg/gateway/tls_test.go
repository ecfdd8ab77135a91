package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"go.uber.org/zap"
)

// testCert is a self-signed certificate made for one test.
type testCert struct {
	certPEM, keyPEM []byte
	pair            tls.Certificate
}

type certSpec struct {
	cn        string
	dns       []string
	uris      []string
	emails    []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	rsa       bool // an RSA key instead of ECDSA P-256
}

func makeCert(t *testing.T, spec certSpec) testCert {
	t.Helper()
	var key crypto.Signer
	var err error
	if spec.rsa {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	if spec.notBefore.IsZero() {
		spec.notBefore = time.Now().Add(-time.Hour)
	}
	if spec.notAfter.IsZero() {
		spec.notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(time.Now().UnixNano()),
		Subject:        pkix.Name{CommonName: spec.cn},
		DNSNames:       spec.dns,
		EmailAddresses: spec.emails,
		IPAddresses:    spec.ips,
		NotBefore:      spec.notBefore,
		NotAfter:       spec.notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:           true, BasicConstraintsValid: true,
	}
	for _, u := range spec.uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if c.pair, err = tls.X509KeyPair(c.certPEM, c.keyPEM); err != nil {
		t.Fatal(err)
	}
	return c
}

// write stores the certificate and key as dir/name.pem and dir/name-key.pem.
func (c testCert) write(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, c.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestCertSetSelection(t *testing.T) {
	api := makeCert(t, certSpec{cn: "api", dns: []string{"api.example.com", "www.example.com"}})
	wild := makeCert(t, certSpec{cn: "wild", dns: []string{"*.tenants.example.com", "tenants.example.com"}})
	cnOnly := makeCert(t, certSpec{cn: "legacy.example.com"})
	certs := []*tls.Certificate{&api.pair, &wild.pair, &cnOnly.pair}
	set := newCertSet(certs)

	tests := []struct {
		name     string
		giveSNI  string
		wantCert *tls.Certificate
	}{
		{name: "exact", giveSNI: "api.example.com", wantCert: &api.pair},
		{name: "second name", giveSNI: "www.example.com", wantCert: &api.pair},
		{name: "case folded", giveSNI: "API.Example.COM", wantCert: &api.pair},
		{name: "trailing dot", giveSNI: "api.example.com.", wantCert: &api.pair},
		{name: "wildcard", giveSNI: "acme.tenants.example.com", wantCert: &wild.pair},
		{name: "wildcard domain itself by its own name", giveSNI: "tenants.example.com", wantCert: &wild.pair},
		{name: "wildcard covers one label", giveSNI: "a.b.tenants.example.com", wantCert: &api.pair},
		{name: "CN when there are no SANs", giveSNI: "legacy.example.com", wantCert: &cnOnly.pair},
		{name: "unknown name gets the first", giveSNI: "other.example.org", wantCert: &api.pair},
		{name: "no SNI gets the first", giveSNI: "", wantCert: &api.pair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hello := &tls.ClientHelloInfo{ServerName: tt.giveSNI, SupportedVersions: []uint16{tls.VersionTLS13}}
			if got := set.get(hello); got != tt.wantCert {
				t.Fatalf("SNI %q got %s, want %s", tt.giveSNI, got.Leaf.Subject.CommonName, tt.wantCert.Leaf.Subject.CommonName)
			}
		})
	}
}

// TestCertSetPrefersSupported: an ECDSA and an RSA certificate for the
// same name; each client gets the one whose signature it supports, and the
// first when it supports neither.
func TestCertSetPrefersSupported(t *testing.T) {
	ec := makeCert(t, certSpec{cn: "ecdsa", dns: []string{"api.example.com"}})
	rs := makeCert(t, certSpec{cn: "rsa", dns: []string{"api.example.com"}, rsa: true})
	set := newCertSet([]*tls.Certificate{&ec.pair, &rs.pair})
	tests := []struct {
		name        string
		giveSchemes []tls.SignatureScheme
		wantCert    *tls.Certificate
	}{
		{name: "ecdsa client", giveSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, wantCert: &ec.pair},
		{name: "rsa-only client", giveSchemes: []tls.SignatureScheme{tls.PSSWithSHA256}, wantCert: &rs.pair},
		{name: "neither", giveSchemes: []tls.SignatureScheme{tls.Ed25519}, wantCert: &ec.pair},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hello := &tls.ClientHelloInfo{ServerName: "api.example.com", SupportedVersions: []uint16{tls.VersionTLS13},
				SignatureSchemes: tt.giveSchemes}
			if got := set.get(hello); got != tt.wantCert {
				t.Fatalf("got %s, want %s", got.Leaf.Subject.CommonName, tt.wantCert.Leaf.Subject.CommonName)
			}
		})
	}
}

// tlsCheck runs what -check runs on a configuration with tlsSection.
func tlsCheck(t *testing.T, tlsSection string) (warnings, errs []string) {
	t.Helper()
	src := "listen: \":8443\"\ntls:\n" + tlsSection + `
upstreams:
  a: { targets: ["http://127.0.0.1:9002"] }
routes:
  - name: one
    match: { path_prefix: / }
    upstream: a
`
	cfg, err := config.Parse("gw.yaml", []byte(src))
	ws, err := CheckWarnings(cfg, err, builtin.Registry())
	for _, w := range ws {
		warnings = append(warnings, w.String())
	}
	for _, e := range config.Errors(err) {
		errs = append(errs, e.Error())
	}
	return warnings, errs
}

func TestBuildTLSFiles(t *testing.T) {
	dir := t.TempDir()
	good := makeCert(t, certSpec{cn: "good", dns: []string{"good.example.com"}})
	other := makeCert(t, certSpec{cn: "other"})
	expired := makeCert(t, certSpec{cn: "old", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	future := makeCert(t, certSpec{cn: "future", notBefore: time.Now().Add(24 * time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	goodCert, goodKey := good.write(t, dir, "good")
	_, otherKey := other.write(t, dir, "other")
	oldCert, oldKey := expired.write(t, dir, "old")
	futureCert, futureKey := future.write(t, dir, "future")

	tests := []struct {
		name         string
		giveSection  string
		wantErrs     []string
		wantWarnings []string
	}{
		{
			name:        "valid",
			giveSection: "  certificates: [{ cert_file: " + goodCert + ", key_file: " + goodKey + " }]\n",
		},
		{
			name:        "mismatched pair",
			giveSection: "  certificates: [{ cert_file: " + goodCert + ", key_file: " + otherKey + " }]\n",
			wantErrs:    []string{"gw.yaml:3: tls.certificates[0].key_file: the private key in " + otherKey + " does not match the certificate in " + goodCert},
		},
		{
			name:        "key given as certificate",
			giveSection: "  certificates: [{ cert_file: " + goodKey + ", key_file: " + goodKey + " }]\n",
			wantErrs:    []string{"gw.yaml:3: tls.certificates[0].cert_file: no PEM certificate in " + goodKey},
		},
		{
			name:        "certificate given as key",
			giveSection: "  certificates: [{ cert_file: " + goodCert + ", key_file: " + goodCert + " }]\n",
			wantErrs:    []string{"gw.yaml:3: tls.certificates[0].key_file: no usable PEM private key in " + goodCert},
		},
		{
			name:         "expired",
			giveSection:  "  certificates: [{ cert_file: " + oldCert + ", key_file: " + oldKey + " }]\n",
			wantWarnings: []string{`gw.yaml:3: tls.certificates[0].cert_file: warning: certificate "old" (` + oldCert + ") expired on "},
		},
		{
			name:         "not yet valid",
			giveSection:  "  certificates: [{ cert_file: " + futureCert + ", key_file: " + futureKey + " }]\n",
			wantWarnings: []string{`gw.yaml:3: tls.certificates[0].cert_file: warning: certificate "future" (` + futureCert + ") is not valid before "},
		},
		{
			name:        "client CA without a certificate",
			giveSection: "  certificates: [{ cert_file: " + goodCert + ", key_file: " + goodKey + " }]\n  client_auth: require\n  client_ca_file: " + goodKey + "\n",
			wantErrs:    []string{"gw.yaml:5: tls.client_ca_file: no PEM certificate in " + goodKey},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warnings, errs := tlsCheck(t, tt.giveSection)
			match := func(what string, got, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s = %q, want %q", what, got, want)
				}
				for i := range want {
					if !strings.HasPrefix(got[i], want[i]) {
						t.Fatalf("%s[%d] = %q, want it to start with %q", what, i, got[i], want[i])
					}
				}
			}
			match("errors", errs, tt.wantErrs)
			match("warnings", warnings, tt.wantWarnings)
		})
	}
}

func TestAppendCertSubject(t *testing.T) {
	tests := []struct {
		name string
		give certSpec
		want string
	}{
		{name: "CN only", give: certSpec{cn: "alice"}, want: "CN=alice"},
		{
			name: "every kind of name",
			give: certSpec{cn: "alice", dns: []string{"alice.example.com", "a.example.com"}, uris: []string{"spiffe://example.com/ns/prod/sa/alice"},
				emails: []string{"alice@example.com"}, ips: []net.IP{net.ParseIP("192.0.2.10")}},
			want: "CN=alice;DNS=alice.example.com;DNS=a.example.com;URI=spiffe://example.com/ns/prod/sa/alice;Email=alice@example.com;IP=192.0.2.10",
		},
		{name: "no CN", give: certSpec{dns: []string{"svc.example.com"}}, want: "DNS=svc.example.com"},
		{name: "separators and non-ASCII escaped", give: certSpec{cn: "a;b=c,d%e\"f g\r\nh\u00e9"}, want: "CN=a%3Bb%3Dc%2Cd%25e%22f%20g%0D%0Ah%C3%A9"},
		{name: "nothing to forward", give: certSpec{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := makeCert(t, tt.give)
			if got := string(appendCertSubject(nil, c.pair.Leaf)); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedirectHost(t *testing.T) {
	tests := []struct {
		give   string
		want   string
		wantOK bool
	}{
		{give: "example.com", want: "example.com", wantOK: true},
		{give: "Example.COM:8080", want: "example.com", wantOK: true},
		{give: "example.com.", want: "example.com.", wantOK: true},
		{give: "127.0.0.1:80", want: "127.0.0.1", wantOK: true},
		{give: "[2001:db8::1]:8080", want: "[2001:db8::1]", wantOK: true},
		{give: "[::1]", want: "[::1]", wantOK: true},
		{give: "xn--bcher-kva.example", want: "xn--bcher-kva.example", wantOK: true},
		{give: ""},
		{give: "evil.com/path"},
		{give: "user@evil.com"},
		{give: "evil.com\r\nSet-Cookie: a=b"},
		{give: "example.com:80:80"},
		{give: "example.com:8o"},
		{give: "example.com:1234567"},
		{give: "-example.com"},
		{give: "example-.com"},
		{give: "a..b"},
		{give: "[127.0.0.1]"},
		{give: "[fe80::1%eth0]"},
		{give: "[::1"},
		{give: "[::1]x"},
		{give: "exa mple.com"},
		{give: strings.Repeat("a", 64) + ".com"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, ok := redirectHost([]byte(tt.give))
			if ok != tt.wantOK || string(got) != tt.want {
				t.Fatalf("redirectHost(%q) = %q, %v; want %q, %v", tt.give, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestReloadTLS drives Gateway.Reload on a TLS configuration: files
// replaced under an unchanged configuration are loaded, a mismatched pair
// fails and keeps the served certificates, and removing the tls: section
// keeps the listener's certificates and forwarded-header stripping until
// the restart it asks for.
func TestReloadTLS(t *testing.T) {
	dir := t.TempDir()
	a := makeCert(t, certSpec{cn: "a", dns: []string{"api.example.com"}})
	certFile, keyFile := a.write(t, dir, "api")
	file := filepath.Join(dir, "gateway.yaml")
	body := `listen: "127.0.0.1:8443"
tls:
  certificates: [{ cert_file: ` + certFile + `, key_file: ` + keyFile + ` }]
  client_ca_file: ` + certFile + `
  client_auth: request
  forward_client_cert: X-Client-Cert-Subject
upstreams:
  a: { targets: ["http://127.0.0.1:9"] }
routes:
  - name: one
    match: { path_prefix: / }
    upstream: a
`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
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
	defer func() {
		gw.retiring.Wait()
		gw.cur.Load().close()
	}()
	served := func() string { return gw.cur.Load().tls.certs.certs[0].Leaf.Subject.CommonName }

	if res, err := gw.Reload(); err != nil || !res.Unchanged {
		t.Fatalf("reload of unchanged files: %+v %v", res, err)
	}
	b := makeCert(t, certSpec{cn: "b", dns: []string{"api.example.com"}})
	b.write(t, dir, "api")
	if res, err := gw.Reload(); err != nil || res.Unchanged {
		t.Fatalf("reload after the certificate files changed: %+v %v", res, err)
	}
	if got := served(); got != "b" {
		t.Fatalf("serving %q after the reload, want b", got)
	}

	c := makeCert(t, certSpec{cn: "c", dns: []string{"api.example.com"}})
	if err := os.WriteFile(keyFile, c.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("reload with a mismatched pair: %v", err)
	}
	if got := served(); got != "b" {
		t.Fatalf("serving %q after a failed reload, want b", got)
	}

	b.write(t, dir, "api")
	plain := strings.Replace(body, body[strings.Index(body, "tls:"):strings.Index(body, "upstreams:")], "", 1)
	if err := os.WriteFile(file, []byte(plain), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := gw.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Restart, "tls") {
		t.Fatalf("restart needed for %v, want tls listed", res.Restart)
	}
	gen := gw.cur.Load()
	if gen.tls == nil || served() != "b" || string(gen.forwardCert) != "X-Client-Cert-Subject" {
		t.Fatalf("the TLS listener lost its settings: %+v", gen.tls)
	}
	if !gen.identity.Contains([]byte("x_client_cert_subject")) {
		t.Fatal("the forwarded certificate header is no longer stripped from clients")
	}
}
