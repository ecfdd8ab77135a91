package gateway

import (
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// Every forward_claims header of every jwt instance is an identity header,
// whether a route uses the instance or not, and is kept folded.
func TestIdentityHeadersFromEveryJWTInstance(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
plugins:
  used:
    type: jwt
    secret: test-secret-that-is-at-least-32-bytes-long
    forward_claims: { sub: X-User-ID, tenant: X-Tenant }
  unused:
    type: jwt
    secret: test-secret-that-is-at-least-32-bytes-long
    forward_claims: { org: X_Org }
routes:
  - name: api
    match: { path_prefix: /api/ }
    upstream: up
    plugins: [used, { jwt: { secret: test-secret-that-is-at-least-32-bytes-long, forward_claims: { team: Team-Name } } }]
  - name: public
    match: { path_prefix: / }
    upstream: up
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
	defer gen.close()
	want := "team-name,x-org,x-tenant"
	if got := strings.Join(gen.identity.Names(), ","); got != want {
		t.Fatalf("identity headers = %s, want %s", got, want)
	}
}
