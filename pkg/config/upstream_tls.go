package config

import (
	"crypto/sha256"
	"net"
	"net/url"
	"strings"
)

// UpstreamTLS configures TLS to an upstream's https targets: the CA that
// verifies them (default: the system roots), the name verified (default:
// each target's host), an optional client certificate (mTLS) and the lowest
// TLS version. The loader reads the files at start and on every reload, so
// a rotated certificate takes effect on the next reload; the gateway parses
// and checks their content when it builds the upstream.
type UpstreamTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is sent as SNI and verified in each target's certificate.
	ServerName string `yaml:"server_name"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// InsecureSkipVerify accepts any certificate; the gateway warns about it.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// CA, Cert and Key are the contents of CAFile, CertFile and KeyFile
	// as read by the loader (nil when the file is not named or could not
	// be read).
	CA   []byte `yaml:"-"`
	Cert []byte `yaml:"-"`
	Key  []byte `yaml:"-"`
	Meta Meta   `yaml:"-"`
}

// upstreamTLS checks the tls: section of upstream name and reads its files.
func (v *validator) upstreamTLS(path string, u *Upstream) {
	t := u.TLS
	m := t.Meta
	path += ".tls"
	if scheme := targetsScheme(URLs(u.Targets)); scheme == "http" {
		v.at(m.Node, path, "applies to https targets only, and every target is http: remove tls or use https:// targets")
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.at(m.Pos("cert_file"), path+".key_file", "required with cert_file")
	case t.KeyFile != "" && t.CertFile == "":
		v.at(m.Pos("key_file"), path+".cert_file", "required with key_file")
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		v.at(m.Pos("min_version"), path+".min_version", "expected \"1.2\" or \"1.3\", got %q", t.MinVersion)
	}
	if t.ServerName != "" && !validServerName(t.ServerName) {
		v.at(m.Pos("server_name"), path+".server_name", "expected a host name or IP address (no port), got %q", t.ServerName)
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		v.at(m.Pos("insecure_skip_verify"), path+".insecure_skip_verify", "turns off the verification ca_file is for: drop one of them")
	}
	read := func(key, file string) []byte {
		if file == "" {
			return nil
		}
		return v.readFile(m.Pos(key), path+"."+key, file)
	}
	t.CA = read("ca_file", t.CAFile)
	t.Cert = read("cert_file", t.CertFile)
	t.Key = read("key_file", t.KeyFile)
}

// targetsScheme returns "http" or "https" when every valid target has that
// scheme, "mixed" when they differ, and "" when no target is valid.
func targetsScheme(targets []string) string {
	scheme := ""
	for _, raw := range targets {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		switch scheme {
		case "":
			scheme = u.Scheme
		case u.Scheme:
		default:
			return "mixed"
		}
	}
	return scheme
}

// validServerName reports whether s can be a TLS server name: a host name
// or an IP address, without port or spaces.
func validServerName(s string) bool {
	return net.ParseIP(s) != nil || !strings.ContainsAny(s, " \t\r\n/:@[]")
}

// fileHash returns the SHA-256 of data when the loader read no other file
// (c.ReadFiles), else of data followed by the paths and digests of those
// files (upstream TLS certificates and keys), so that Hash changes when one
// of them does.
func (c *Config) fileHash(data []byte) [32]byte {
	if len(c.ReadFiles) == 0 {
		return sha256.Sum256(data)
	}
	h := sha256.New()
	h.Write(data)
	for _, f := range c.ReadFiles {
		h.Write([]byte(f.Path))
		h.Write(f.Sum[:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
