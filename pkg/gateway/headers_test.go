package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// The headers plugin cannot set or add a header that an identity plugin
// anywhere in the file claims, compared by folded name; the error names
// the header at its own line.
func TestHeadersRefusesClaimedIdentityHeaders(t *testing.T) {
	sum := sha256.Sum256([]byte("gk_example-key"))
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, []byte(`{"keys": [{"id": "a", "sha256": "`+hex.EncodeToString(sum[:])+`", "sub": "svc"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
plugins:
  unused-jwt:
    type: jwt
    secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK
    forward_claims: { tenant: X-Tenant }
  keys:
    type: api-key
    keys_file: ` + keys + `
    forward_header: X-Key-Owner
  shared-headers:
    type: headers
    request:
      set:
        x_tenant: spoofed
routes:
  - name: a
    match: { path_prefix: /a/ }
    upstream: up
    plugins:
      - headers:
          request:
            add:
              X_KEY_OWNER: spoofed
            set:
              X-Env: prod
  - name: b
    match: { path_prefix: /b/ }
    upstream: up
    plugins: [shared-headers]
  - name: c
    match: { path_prefix: /c/ }
    upstream: up
    plugins: [shared-headers, keys]
`
	cfg, err := config.Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := checkDeps(builtin.Registry())
	defer d.close()
	gen, err := build(cfg, d.deps)
	if err == nil {
		gen.close()
		t.Fatal("no error")
	}
	want := []string{
		"c.yaml:16: plugins.shared-headers.request.set.x_tenant: x_tenant is an identity header",
		"c.yaml:25: routes[0].plugins[0].headers.request.add.X_KEY_OWNER: X_KEY_OWNER is an identity header",
	}
	got := config.Errors(err)
	if len(got) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d (one per header, the shared instance reported once)", err, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i].Error(), w) {
			t.Errorf("error %d:\n%s\nwant prefix\n%s", i, got[i], w)
		}
	}
}

// An instance no route uses is checked too: a later reload may use it.
func TestHeadersUnusedInstanceChecked(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
plugins:
  spare: { type: headers, request: { set: { X-Tenant: forged } } }
routes:
  - name: a
    match: { path_prefix: / }
    upstream: up
    plugins:
      - jwt: { secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK, forward_claims: { tenant: X-Tenant } }
`))
	if err != nil {
		t.Fatal(err)
	}
	d := checkDeps(builtin.Registry())
	defer d.close()
	gen, err := build(cfg, d.deps)
	if err == nil {
		gen.close()
		t.Fatal("no error")
	}
	if want := "c.yaml:4: plugins.spare.request.set.X-Tenant: X-Tenant is an identity header"; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error\n%s\nwant prefix\n%s", err, want)
	}
}

// Headers that no identity plugin claims build, on requests and responses
// alike (response headers are not identity headers).
func TestHeadersOtherNamesBuild(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
routes:
  - name: a
    match: { path_prefix: / }
    upstream: up
    plugins:
      - jwt: { secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK, forward_claims: { tenant: X-Tenant } }
      - headers:
          request: { set: { X-Env: prod }, remove: [X-Tenant, X-Debug] }
          response: { set: { X-Tenant: shown, X-User-Echo: "1" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	d := checkDeps(builtin.Registry())
	defer d.close()
	gen, err := build(cfg, d.deps)
	if err != nil {
		t.Fatal(err)
	}
	gen.close()
}
