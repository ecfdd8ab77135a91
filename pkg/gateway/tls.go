package gateway

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/valyala/fasthttp"
)

// tlsState is the TLS side of a generation: the certificates and client
// certificate settings the listener's handshakes use while the generation
// is live. It owns no resource: a retired generation's state is simply
// dropped, and handshakes already under way finish with it.
type tlsState struct {
	config *tls.Config
	certs  *certSet
	// forward is tls.forward_client_cert, nil when off.
	forward []byte
	// files is the digest of the files read (see tlsFiles): a reload of
	// an unchanged configuration file still builds a new generation when
	// it differs.
	files [sha256.Size]byte
}

// certSet is a generation's server certificates with the index SNI
// selection uses: exact DNS names, and wildcard names by the domain they
// cover ("*.example.com" under "example.com").
type certSet struct {
	certs    []*tls.Certificate // in configuration order; certs[0] is the default
	infos    []metrics.TLSCertificate
	exact    map[string][]*tls.Certificate
	wildcard map[string][]*tls.Certificate
}

// newCertSet indexes certs (each with its Leaf parsed) by their DNS names;
// a certificate without DNS names is indexed by its subject CN.
func newCertSet(certs []*tls.Certificate) *certSet {
	s := &certSet{certs: certs, exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}}
	for _, c := range certs {
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				s.wildcard[rest] = append(s.wildcard[rest], c)
			} else {
				s.exact[n] = append(s.exact[n], c)
			}
		}
	}
	return s
}

// get picks the certificate for a handshake: one whose names match the
// server name the client asked for, exactly first and then by a wildcard
// covering its first label (as RFC 6125 allows), else the default. Among
// several matching (an RSA and an ECDSA certificate for the same names) it
// prefers one the client supports.
func (s *certSet) get(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := pickCert(s.exact[name], hello); c != nil {
			return c
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c := pickCert(s.wildcard[name[i+1:]], hello); c != nil {
				return c
			}
		}
	}
	return s.certs[0]
}

func pickCert(cands []*tls.Certificate, hello *tls.ClientHelloInfo) *tls.Certificate {
	if len(cands) == 0 {
		return nil
	}
	if len(cands) > 1 {
		for _, c := range cands {
			if hello.SupportsCertificate(c) == nil {
				return c
			}
		}
	}
	return cands[0]
}

// buildTLS loads the tls: section's files and compiles the generation's
// TLS state. Every unreadable file, bad PEM and mismatched pair is an error
// positioned at its key; a certificate outside its validity period is a
// warning (it loads, clients will refuse it).
func buildTLS(cfg *config.Config, now time.Time, warn func(*config.Warning)) (*tlsState, []error) {
	t := cfg.TLS
	var errs []error
	digest := sha256.New()
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		digestFile(digest, path, data)
		return data, err
	}
	fail := func(m config.Meta, key, path, format string, args ...any) {
		errs = append(errs, config.Errorf(cfg.File, m.Pos(key), path, fmt.Sprintf(format, args...)))
	}
	var certs []*tls.Certificate
	var infos []metrics.TLSCertificate
	names := map[string]bool{}
	for i, ce := range t.Certificates {
		if ce == nil || ce.CertFile == "" || ce.KeyFile == "" {
			continue // reported by config validation
		}
		path := config.IndexPath("tls.certificates", i)
		certPEM, err := read(ce.CertFile)
		if err != nil {
			fail(ce.Meta, "cert_file", path+".cert_file", "cannot read the certificate: %v", pathError(err))
		}
		keyPEM, kerr := read(ce.KeyFile)
		if kerr != nil {
			fail(ce.Meta, "key_file", path+".key_file", "cannot read the private key: %v", pathError(kerr))
		}
		if err != nil || kerr != nil {
			continue
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			key, msg := pairError(ce, err)
			fail(ce.Meta, key, path+"."+key, "%s", msg)
			continue
		}
		leaf := pair.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				fail(ce.Meta, "cert_file", path+".cert_file", "%s: invalid certificate: %v", ce.CertFile, err)
				continue
			}
			pair.Leaf = leaf
		}
		name := certName(leaf, ce.CertFile)
		if names[name] {
			name = filepath.Base(ce.CertFile)
		}
		names[name] = true
		switch {
		case now.After(leaf.NotAfter):
			warn(config.Warnf(cfg.File, ce.Meta.Pos("cert_file"), path+".cert_file",
				fmt.Sprintf("certificate %q (%s) expired on %s: clients will refuse it", name, ce.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))))
		case now.Before(leaf.NotBefore):
			warn(config.Warnf(cfg.File, ce.Meta.Pos("cert_file"), path+".cert_file",
				fmt.Sprintf("certificate %q (%s) is not valid before %s: clients will refuse it until then", name, ce.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))))
		}
		certs = append(certs, &pair)
		infos = append(infos, metrics.TLSCertificate{Name: name, NotAfter: leaf.NotAfter})
	}
	c := &tls.Config{
		NextProtos: t.ALPN,
		MinVersion: tls.VersionTLS12,
	}
	if t.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	switch t.ClientAuth {
	case "request":
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if t.ClientAuth != "none" && t.ClientCAFile != "" {
		data, err := read(t.ClientCAFile)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			fail(t.Meta, "client_ca_file", "tls.client_ca_file", "cannot read the client CAs: %v", pathError(err))
		case !pool.AppendCertsFromPEM(data):
			fail(t.Meta, "client_ca_file", "tls.client_ca_file", "no PEM certificate in %s", t.ClientCAFile)
		}
		c.ClientCAs = pool
	}
	if len(errs) > 0 || len(certs) == 0 {
		return nil, errs
	}
	set := newCertSet(certs)
	set.infos = infos
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return set.get(hello), nil }
	st := &tlsState{config: c, certs: set}
	digest.Sum(st.files[:0])
	if t.ForwardClientCert != "" {
		st.forward = fasthttp.AppendNormalizedHeaderKey(nil, t.ForwardClientCert)
	}
	return st, nil
}

// digestFile adds one file (its path and contents) to a tlsState digest.
func digestFile(h hash.Hash, path string, data []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(path)))
	h.Write(n[:])
	h.Write([]byte(path))
	binary.BigEndian.PutUint64(n[:], uint64(len(data)))
	h.Write(n[:])
	h.Write(data)
}

// filesChanged reports whether the files st was built from (as t names
// them) now differ from what was read, or cannot be read.
func (st *tlsState) filesChanged(t *config.TLS) bool {
	h := sha256.New()
	for _, ce := range t.Certificates {
		if ce == nil {
			continue
		}
		for _, p := range []string{ce.CertFile, ce.KeyFile} {
			data, err := os.ReadFile(p)
			if err != nil {
				return true
			}
			digestFile(h, p, data)
		}
	}
	if t.ClientAuth != "none" && t.ClientCAFile != "" {
		data, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return true
		}
		digestFile(h, t.ClientCAFile, data)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum != st.files
}

// certName is the name a certificate goes by in metrics and messages: its
// subject CN, else its first DNS name, else its file's base name.
func certName(leaf *x509.Certificate, file string) string {
	switch {
	case leaf.Subject.CommonName != "":
		return leaf.Subject.CommonName
	case len(leaf.DNSNames) > 0:
		return leaf.DNSNames[0]
	}
	return filepath.Base(file)
}

// pairError turns tls.X509KeyPair's error into the key it is about and a
// message saying what is wrong.
func pairError(ce *config.TLSCertificate, err error) (key, msg string) {
	s := err.Error()
	switch {
	case strings.Contains(s, "does not match"):
		return "key_file", fmt.Sprintf("the private key in %s does not match the certificate in %s", ce.KeyFile, ce.CertFile)
	case strings.Contains(s, "certificate input"):
		return "cert_file", fmt.Sprintf("no PEM certificate in %s", ce.CertFile)
	case strings.Contains(s, "key input") || strings.Contains(s, "private key"):
		return "key_file", fmt.Sprintf("no usable PEM private key in %s (%s)", ce.KeyFile, strings.TrimPrefix(s, "tls: "))
	}
	return "cert_file", fmt.Sprintf("cannot load %s with %s: %s", ce.CertFile, ce.KeyFile, strings.TrimPrefix(s, "tls: "))
}

// pathError drops the "open" verb from a file error: "certs/a.pem: no such
// file or directory".
func pathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// tlsListener makes the accepted connections server-side TLS connections.
// The handshake is not done here but by fasthttp when it starts serving the
// connection, under server.header_timeout (its ReadTimeout), in the
// connection's own goroutine: a slow client never holds up Accept, and it
// counts against the connection caps (connLimiter, below this listener)
// from its first byte.
type tlsListener struct {
	net.Listener
	config *tls.Config
}

// Accept returns the next connection, wrapped for TLS.
func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.config)}, nil
}

// tlsConn is a server-side TLS connection that keeps what the gateway
// derives from its handshake, so that it is derived once per connection
// rather than per request. fasthttp serves a connection's requests one at a
// time in one goroutine, so the fields need no lock. It still satisfies
// fasthttp's test for TLS (RequestCtx.IsTLS).
type tlsConn struct {
	*tls.Conn
	subjectDone bool
	// subject is the forward_client_cert value; nil without a verified
	// client certificate.
	subject []byte
}

// clientSubject returns the verified client certificate's subject and
// names in the forward_client_cert format, or nil.
func (c *tlsConn) clientSubject() []byte {
	if !c.subjectDone {
		c.subjectDone = true
		st := c.ConnectionState()
		if len(st.VerifiedChains) > 0 && len(st.VerifiedChains[0]) > 0 {
			c.subject = appendCertSubject(nil, st.VerifiedChains[0][0])
		}
	}
	return c.subject
}

// appendCertSubject appends the forward_client_cert value of cert:
// "CN=alice;DNS=alice.example;URI=spiffe://example/alice;Email=a@example;
// IP=192.0.2.1", one pair per name in certificate order, the CN first and
// pairs without a value left out. Bytes outside printable ASCII and the
// separators ';', '=', ',' and '%' are percent-encoded.
func appendCertSubject(dst []byte, cert *x509.Certificate) []byte {
	add := func(key, v string) {
		if v == "" {
			return
		}
		if len(dst) > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, key...)
		dst = append(dst, '=')
		for i := 0; i < len(v); i++ {
			b := v[i]
			if b <= ' ' || b >= 0x7f || b == ';' || b == '=' || b == ',' || b == '%' || b == '"' {
				dst = append(dst, '%', hexDigits[b>>4], hexDigits[b&15])
				continue
			}
			dst = append(dst, b)
		}
	}
	add("CN", cert.Subject.CommonName)
	for _, n := range cert.DNSNames {
		add("DNS", n)
	}
	for _, u := range cert.URIs {
		add("URI", u.String())
	}
	for _, e := range cert.EmailAddresses {
		add("Email", e)
	}
	for _, ip := range cert.IPAddresses {
		add("IP", ip.String())
	}
	if dst == nil {
		dst = []byte{}
	}
	return dst
}

const hexDigits = "0123456789ABCDEF"

// setClientCert sets the forward_client_cert header (name) from the
// connection's verified client certificate, if it has one. Client-sent
// copies were already removed as identity headers.
func setClientCert(ctx *fasthttp.RequestCtx, name []byte) {
	c, ok := ctx.Conn().(*tlsConn)
	if !ok {
		return
	}
	if v := c.clientSubject(); len(v) > 0 {
		ctx.Request.Header.SetCanonical(name, v)
	}
}

// tlsBaseConfig is the TLS listener's configuration. Every handshake takes
// the live generation's settings (certificates, client certificates,
// minimum version, ALPN) through GetConfigForClient, so a reload changes
// them for new handshakes while open connections carry on; the base
// configuration's session ticket keys outlive reloads, so sessions resume
// across them.
func (g *Gateway) tlsBaseConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return g.cur.Load().tls.config, nil
		},
	}
}
