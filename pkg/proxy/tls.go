package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// TLS versions accepted in TLS.MinVersion.
const (
	// TLSVersion12 is TLS 1.2, the default and the lowest version offered.
	TLSVersion12 = "1.2"
	// TLSVersion13 is TLS 1.3.
	TLSVersion13 = "1.3"
)

// sessionCacheSize is the number of TLS sessions kept per target for
// resumption. A new connection needs one recent session, so a small cache
// serves a pool of any size.
const sessionCacheSize = 64

// TLS configures the connections to an upstream's https targets. The
// certificates and key are held as PEM bytes, not file names, so that Key
// changes when a file's content does and a reload rebuilds the upstream.
type TLS struct {
	// CA is a PEM bundle of the certificates that may sign a target's
	// chain; empty means the system roots.
	CA []byte
	// Cert (a PEM certificate chain, leaf first) and Key (its PEM private
	// key) are presented to targets that ask for a client certificate
	// (mTLS). Both or neither.
	Cert, Key []byte
	// ServerName is sent as SNI and verified in the target's certificate;
	// empty means each target's host.
	ServerName string
	// MinVersion is TLSVersion12 (the default) or TLSVersion13.
	MinVersion string
	// InsecureSkipVerify accepts any certificate a target presents. It
	// exists for tests and migrations; the gateway warns about it.
	InsecureSkipVerify bool
}

// key returns the canonical settings string: the PEM contents are reduced to
// their SHA-256, so a rotated file makes a different key.
func (t *TLS) key() string {
	sum := func(b []byte) string {
		if len(b) == 0 {
			return "-"
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	return "{ca=" + sum(t.CA) + " cert=" + sum(t.Cert) + " key=" + sum(t.Key) +
		" server_name=" + strconv.Quote(t.ServerName) + " min_version=" + strconv.Quote(t.minVersion()) +
		" insecure_skip_verify=" + strconv.FormatBool(t.InsecureSkipVerify) + "}"
}

func (t *TLS) minVersion() string {
	if t.MinVersion == "" {
		return TLSVersion12
	}
	return t.MinVersion
}

// build returns the client TLS configuration shared by the upstream's
// targets (each target clones it with its own server name and session
// cache), or every problem of the settings, each prefixed with the YAML key
// it concerns.
func (t *TLS) build() (*tls.Config, []error) {
	var errs []error
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	switch t.minVersion() {
	case TLSVersion12:
		c.MinVersion = tls.VersionTLS12
	case TLSVersion13:
		c.MinVersion = tls.VersionTLS13
	default:
		errs = append(errs, fmt.Errorf("tls.min_version: expected %q or %q, got %q", TLSVersion12, TLSVersion13, t.MinVersion))
	}
	if strings.ContainsAny(t.ServerName, " \t\r\n/:") {
		errs = append(errs, fmt.Errorf("tls.server_name: expected a host name or IP address, got %q", t.ServerName))
	}
	if len(t.CA) > 0 {
		pool, err := ParseCertPool(t.CA)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls.ca_file: %w", err))
		}
		c.RootCAs = pool
	}
	switch {
	case len(t.Cert) > 0 && len(t.Key) == 0:
		errs = append(errs, errors.New("tls.key_file: required with cert_file"))
	case len(t.Key) > 0 && len(t.Cert) == 0:
		errs = append(errs, errors.New("tls.cert_file: required with key_file"))
	case len(t.Cert) > 0:
		pair, err := ParseKeyPair(t.Cert, t.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls.cert_file: %w", err))
		} else {
			c.Certificates = []tls.Certificate{pair}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// ParseCertPool parses a PEM bundle of CA certificates. Unlike
// x509.CertPool.AppendCertsFromPEM it refuses a bundle with no certificate,
// with a block of another type, or with a certificate that does not parse,
// so a truncated or mixed-up file is an error rather than a smaller pool.
func ParseCertPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, expected CERTIFICATE", n, b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// ParseKeyPair parses a PEM certificate chain and its private key, and
// checks that the key belongs to the leaf certificate.
func ParseKeyPair(certPEM, keyPEM []byte) (tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls says "private key does not match public key" and
		// "failed to find any PEM data in ..." itself.
		return tls.Certificate{}, fmt.Errorf("cannot load the certificate with its key: %w", err)
	}
	return pair, nil
}

// tlsReadError returns the TLS alert behind err when reading a response from
// a TLS connection ended in io.EOF: the response parser reports any failure
// before the first byte as io.EOF, which would hide, for example, that a
// TLS 1.3 target refused the client certificate after the handshake
// ("remote error: tls: certificate required"). crypto/tls keeps a read
// error, so reading again returns it at once.
func tlsReadError(conn net.Conn, err error) error {
	tc, ok := conn.(*tls.Conn)
	if !ok || err != io.EOF {
		return err
	}
	var b [1]byte
	if _, rerr := tc.Read(b[:]); rerr != nil && rerr != io.EOF {
		return rerr
	}
	return err
}

// clientTLSConfig returns the TLS configuration for a target named
// serverName, derived from base (nil: system roots, TLS 1.2 or later). Each
// target gets its own session cache: with a shared server_name, sessions of
// one target would be offered to another that cannot resume them.
func clientTLSConfig(base *tls.Config, serverName string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	// The exchange speaks HTTP/1.1 only.
	c.NextProtos = []string{"http/1.1"}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
	return c
}
