package gateway

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

const diffBase = `
listen: ":8080"
server: { read_timeout: 10s, trusted_proxies: ["10.0.0.0/8"] }
upstreams:
  a: { targets: ["http://127.0.0.1:9002"] }
routes:
  - name: one
    match: { path_prefix: /one/ }
    upstream: a
  - name: two
    match: { path_prefix: /two/ }
    upstream: a
`

func TestReloadDiff(t *testing.T) {
	tests := []struct {
		name        string
		give        func(string) string
		wantAdded   []string
		wantRemoved []string
		wantChanged []string
		wantRestart []string
		wantUps     []string
	}{
		{name: "nothing but a comment", give: func(s string) string { return s + "# note\n" }},
		{name: "listen", give: func(s string) string { return strings.Replace(s, `":8080"`, `":8081"`, 1) }, wantRestart: []string{"listen"}},
		{name: "trusted proxies apply live", give: func(s string) string { return strings.Replace(s, "10.0.0.0/8", "192.168.0.0/16", 1) }},
		{name: "shutdown settings apply live", give: func(s string) string {
			return strings.Replace(s, "read_timeout: 10s", "read_timeout: 10s, shutdown_delay: 3s", 1)
		}},
		{name: "server timeout", give: func(s string) string { return strings.Replace(s, "read_timeout: 10s", "read_timeout: 5s", 1) }, wantRestart: []string{"server"}},
		{name: "route changed", give: func(s string) string { return strings.Replace(s, "path_prefix: /two/", "path_prefix: /deux/", 1) }, wantChanged: []string{"two"}},
		{name: "route renamed", give: func(s string) string { return strings.Replace(s, "name: one", "name: uno", 1) }, wantAdded: []string{"uno"}, wantRemoved: []string{"one"}},
		{name: "tls added", give: func(s string) string {
			return s + "tls: { certificates: [{ cert_file: a.pem, key_file: a-key.pem }] }\n"
		}, wantRestart: []string{"tls"}},
		{name: "tls and redirect added", give: func(s string) string {
			return s + "redirect_http: \":8081\"\ntls: { certificates: [{ cert_file: a.pem, key_file: a-key.pem }] }\n"
		}, wantRestart: []string{"tls", "redirect_http"}},
		{name: "redis added", give: func(s string) string { return s + "redis: { addrs: [\"127.0.0.1:6379\"] }\n" }, wantRestart: []string{"redis"}},
		{name: "upstream settings", give: func(s string) string { return strings.Replace(s, `9002"] }`, `9002"], retries: 2 }`, 1) }, wantUps: []string{"a"}},
		{name: "upstream default written out", give: func(s string) string { return strings.Replace(s, `9002"] }`, `9002"], retries: 0 }`, 1) }},
		{name: "upstream added", give: func(s string) string {
			return strings.Replace(s, "upstreams:\n", "upstreams:\n  b: { targets: [\"https://127.0.0.1:9443\"] }\n", 1)
		}, wantUps: []string{"b"}},
	}
	oldCfg, err := config.Parse("a.yaml", []byte(diffBase))
	if err != nil {
		t.Fatal(err)
	}
	cd := checkDeps(builtin.Registry())
	defer cd.close()
	old, err := build(oldCfg, cd.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer old.close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("a.yaml", []byte(tt.give(diffBase)))
			if err != nil {
				t.Fatal(err)
			}
			res := diff(old, cfg)
			check := func(what string, got, want []string) {
				if len(got) == 0 && len(want) == 0 {
					return
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("added", res.Added, tt.wantAdded)
			check("removed", res.Removed, tt.wantRemoved)
			check("changed", res.Changed, tt.wantChanged)
			check("restart", res.Restart, tt.wantRestart)
			check("upstreams", res.Upstreams, tt.wantUps)
		})
	}
}
