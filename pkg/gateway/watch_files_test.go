package gateway

import (
	"slices"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
)

// TestWatchedFilesIncludeListenerCertificates: with watch: true, replacing
// the TLS listener's certificate, key or client CA reloads like an edit of
// the configuration file.
func TestWatchedFilesIncludeListenerCertificates(t *testing.T) {
	gen := &generation{cfg: &config.Config{
		File: "/etc/gatewayd/gateway.yaml",
		TLS: &config.TLS{
			Certificates: []*config.TLSCertificate{
				{CertFile: "/certs/api.pem", KeyFile: "/certs/api-key.pem"},
				{CertFile: "/certs/admin.pem", KeyFile: "/certs/admin-key.pem"},
			},
			ClientCAFile: "/certs/clients-ca.pem",
			ClientAuth:   "require",
		},
	}}
	got := gen.watchedFiles()
	for _, want := range []string{"/etc/gatewayd/gateway.yaml", "/certs/api.pem", "/certs/api-key.pem",
		"/certs/admin.pem", "/certs/admin-key.pem", "/certs/clients-ca.pem"} {
		if !slices.Contains(got, want) {
			t.Errorf("watched files %v lack %s", got, want)
		}
	}
	gen.cfg.TLS.ClientAuth = "none"
	if got := gen.watchedFiles(); slices.Contains(got, "/certs/clients-ca.pem") {
		t.Errorf("client CA watched without client_auth: %v", got)
	}
}
