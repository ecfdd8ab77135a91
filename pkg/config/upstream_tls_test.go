package config

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upstreamTLSFile returns a gateway.yaml with one upstream whose targets and
// tls section are given.
func upstreamTLSFile(targets, tls string) string {
	return "version: 1\nupstreams:\n  billing:\n    targets: " + targets + "\n" + tls +
		"routes:\n  - name: billing\n    match: { path_prefix: /v1/billing/ }\n    upstream: billing\n"
}

func TestUpstreamTLSValid(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert := filepath.Join(dir, "client.pem")
	key := filepath.Join(dir, "client-key.pem")
	for path, content := range map[string]string{ca: "ca bytes", cert: "cert bytes", key: "key bytes"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	data := upstreamTLSFile(`["https://billing.internal:8443", "https://[::1]:8443"]`,
		"    tls:\n      ca_file: "+ca+"\n      cert_file: "+cert+"\n      key_file: "+key+
			"\n      server_name: billing.internal\n      min_version: \"1.3\"\n")
	cfg, err := Parse("gateway.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Upstreams["billing"].TLS
	if string(tc.CA) != "ca bytes" || string(tc.Cert) != "cert bytes" || string(tc.Key) != "key bytes" {
		t.Errorf("files read as %q %q %q", tc.CA, tc.Cert, tc.Key)
	}
	if tc.ServerName != "billing.internal" || tc.MinVersion != "1.3" {
		t.Errorf("settings = %+v", tc)
	}
	if cfg.Hash == sha256.Sum256([]byte(data)) {
		t.Error("the hash does not cover the certificate files")
	}

	// The same file with a rotated CA hashes differently; unchanged files
	// hash the same.
	again, err := Parse("gateway.yaml", []byte(data))
	if err != nil || again.Hash != cfg.Hash {
		t.Fatalf("re-parse: hash changed without a change (%v)", err)
	}
	if err := os.WriteFile(ca, []byte("rotated ca bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated, err := Parse("gateway.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Hash == cfg.Hash {
		t.Error("a rotated ca_file kept the hash: a reload would be skipped")
	}

	// Without a tls section the hash stays the file's own.
	plain := upstreamTLSFile(`["https://billing.internal:8443"]`, "")
	pc, err := Parse("gateway.yaml", []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	if pc.Hash != sha256.Sum256([]byte(plain)) {
		t.Error("the hash of a file without tls sections is not the file's SHA-256")
	}
}

func TestUpstreamTLSInvalid(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("ca"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name        string
		giveTargets string
		giveTLS     string
		wantErrs    []string
	}{
		{
			name:        "tls on http targets",
			giveTargets: `["http://127.0.0.1:9002"]`,
			giveTLS:     "    tls: { server_name: billing.internal }\n",
			wantErrs:    []string{"gateway.yaml:5: upstreams.billing.tls: applies to https targets only, and every target is http: remove tls or use https:// targets"},
		},
		{
			name:        "mixed targets",
			giveTargets: `["https://127.0.0.1:9443", "http://127.0.0.1:9002"]`,
			wantErrs:    []string{"gateway.yaml:4: upstreams.billing.targets: mix http and https targets: a request would be encrypted or not depending on the target picked; make them all https (or split the upstream)"},
		},
		{
			name:        "unreadable files",
			giveTargets: `["https://127.0.0.1:9443"]`,
			giveTLS:     "    tls:\n      ca_file: " + missing + "\n      cert_file: " + dir + "\n      key_file: " + ca + "\n",
			wantErrs: []string{
				"gateway.yaml:6: upstreams.billing.tls.ca_file: cannot read the file: open " + missing + ": no such file or directory",
				"gateway.yaml:7: upstreams.billing.tls.cert_file: cannot read the file: read " + dir + ": is a directory",
			},
		},
		{
			name:        "cert without key",
			giveTargets: `["https://127.0.0.1:9443"]`,
			giveTLS:     "    tls:\n      cert_file: " + ca + "\n",
			wantErrs:    []string{"gateway.yaml:6: upstreams.billing.tls.key_file: required with cert_file"},
		},
		{
			name:        "key without cert",
			giveTargets: `["https://127.0.0.1:9443"]`,
			giveTLS:     "    tls:\n      key_file: " + ca + "\n",
			wantErrs:    []string{"gateway.yaml:6: upstreams.billing.tls.cert_file: required with key_file"},
		},
		{
			name:        "values",
			giveTargets: `["https://127.0.0.1:9443"]`,
			giveTLS:     "    tls:\n      server_name: \"billing internal\"\n      min_version: \"1.0\"\n      ca_file: " + ca + "\n      insecure_skip_verify: true\n",
			wantErrs: []string{
				`gateway.yaml:6: upstreams.billing.tls.server_name: expected a host name or IP address (no port), got "billing internal"`,
				`gateway.yaml:7: upstreams.billing.tls.min_version: expected "1.2" or "1.3", got "1.0"`,
				"gateway.yaml:9: upstreams.billing.tls.insecure_skip_verify: turns off the verification ca_file is for: drop one of them",
			},
		},
		{
			name:        "unknown key",
			giveTargets: `["https://127.0.0.1:9443"]`,
			giveTLS:     "    tls: { ca: ca.pem }\n",
			wantErrs:    []string{`gateway.yaml:5: upstreams.billing.tls.ca: unknown field "ca" (known fields: ca_file, cert_file, insecure_skip_verify, key_file, min_version, server_name)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("gateway.yaml", []byte(upstreamTLSFile(tt.giveTargets, tt.giveTLS)))
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantErrs, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantErrs, "\n"))
			}
		})
	}
}

func TestValidServerName(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "billing.internal", want: true},
		{give: "127.0.0.1", want: true},
		{give: "::1", want: true},
		{give: "billing.internal:8443"},
		{give: "[::1]"},
		{give: "a b"},
		{give: "user@host"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := validServerName(tt.give); got != tt.want {
				t.Errorf("validServerName(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}
