package config

import "strings"

// Defaults of the tls: section.
const (
	DefaultTLSMinVersion = "1.2"
	DefaultTLSClientAuth = "none"
	// ALPNHTTP11 is the only application protocol the TLS listener speaks.
	ALPNHTTP11 = "http/1.1"
)

// TLS makes the client listener serve HTTPS. Absent, listen serves plain
// HTTP. The certificate and key files are read when the configuration is
// loaded and again on every reload; switching between TLS and plain HTTP
// needs a restart.
type TLS struct {
	// Certificates are the server certificates. The TLS client's server
	// name (SNI) picks the one whose DNS names match it, exactly or by a
	// wildcard; the first is served for no or an unknown name.
	Certificates []*TLSCertificate `yaml:"certificates"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	MinVersion string `yaml:"min_version"`
	// ClientCAFile holds the PEM certificates of the CAs that sign client
	// certificates (mTLS).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth asks for client certificates: none, request (verified when
	// sent) or require (a verified one is needed to connect).
	ClientAuth string `yaml:"client_auth"`
	// ALPN lists the application protocols offered; only http/1.1 is served.
	ALPN []string `yaml:"alpn"`
	// ForwardClientCert names the request header that carries the verified
	// client certificate's subject and names upstream. Client-sent copies
	// are always removed.
	ForwardClientCert string `yaml:"forward_client_cert"`
	Meta              Meta   `yaml:"-"`
}

// TLSCertificate is one certificate chain and its private key, PEM files.
type TLSCertificate struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	Meta     Meta   `yaml:"-"`
}

func (t *TLS) applyDefaults() {
	setStr(&t.MinVersion, DefaultTLSMinVersion)
	setStr(&t.ClientAuth, DefaultTLSClientAuth)
	if len(t.ALPN) == 0 {
		t.ALPN = []string{ALPNHTTP11}
	}
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func (v *validator) tls(c *Config) {
	t := c.TLS
	m := t.Meta
	if len(t.Certificates) == 0 {
		v.at(m.Pos("certificates"), "tls.certificates", "at least one certificate is required, e.g. [{cert_file: certs/api.pem, key_file: certs/api-key.pem}]")
	}
	for i, ce := range t.Certificates {
		path := IndexPath("tls.certificates", i)
		if ce == nil {
			v.at(seqItem(m.Pos("certificates"), i), path, "empty entry: give cert_file and key_file")
			continue
		}
		if ce.CertFile == "" {
			v.at(ce.Meta.Node, path+".cert_file", "required: the PEM certificate chain, leaf first")
		}
		if ce.KeyFile == "" {
			v.at(ce.Meta.Node, path+".key_file", "required: the PEM private key of cert_file")
		}
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	case "1.0", "1.1", "1", "1.00", "1.10":
		v.at(m.Pos("min_version"), "tls.min_version", "TLS %s is not supported: the lowest version is 1.2", t.MinVersion)
	default:
		v.at(m.Pos("min_version"), "tls.min_version", "expected \"1.2\" or \"1.3\", got %q", t.MinVersion)
	}
	switch t.ClientAuth {
	case "none":
		if t.ClientCAFile != "" {
			v.at(m.Pos("client_ca_file"), "tls.client_ca_file", "is only used with client_auth: request or require (client_auth is none)")
		}
	case "request", "require":
		if t.ClientCAFile == "" {
			v.at(m.Pos("client_auth"), "tls.client_ca_file", "required with client_auth: %s: the CAs that sign client certificates", t.ClientAuth)
		}
	default:
		v.at(m.Pos("client_auth"), "tls.client_auth", "expected none, request or require, got %q", t.ClientAuth)
	}
	if t.ForwardClientCert != "" {
		switch {
		case !validHeaderName(t.ForwardClientCert):
			v.at(m.Pos("forward_client_cert"), "tls.forward_client_cert", "invalid header name %q", t.ForwardClientCert)
		case t.ClientAuth == "none":
			v.at(m.Pos("forward_client_cert"), "tls.forward_client_cert", "needs client_auth: request or require (there is no client certificate to forward)")
		}
	}
	for i, p := range t.ALPN {
		n := seqItem(m.Pos("alpn"), i)
		path := IndexPath("tls.alpn", i)
		switch p {
		case ALPNHTTP11:
		case "h2":
			v.at(n, path, "h2 is not served: the gateway speaks HTTP/1.1 only, so its plugin chain, limits and smuggling rules hold for every request (see docs/tls.md for what to put in front for HTTP/2 and gRPC); use [http/1.1]")
		default:
			v.at(n, path, "unknown protocol %q: only http/1.1 is served", p)
		}
	}
	if c.RedirectHTTP != "" {
		n := c.Meta.Pos("redirect_http")
		v.hostPort(n, "redirect_http", c.RedirectHTTP)
		if c.RedirectHTTP == c.Listen || c.RedirectHTTP == c.Admin.Listen {
			v.at(n, "redirect_http", "must differ from listen and admin.listen, got %q", c.RedirectHTTP)
		}
	}
}

// redirectWithoutTLS reports redirect_http on a plain listener.
func (v *validator) redirectWithoutTLS(c *Config) {
	v.at(c.Meta.Pos("redirect_http"), "redirect_http", "needs a tls: section: it redirects plain HTTP to the TLS listener")
}
