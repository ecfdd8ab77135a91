package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Every forward_claims header of every jwt instance is an identity header,
// whether a route uses the instance or not, and is kept folded.
func TestIdentityHeadersFromEveryJWTInstance(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
plugins:
  used:
    type: jwt
    secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK
    forward_claims: { sub: X-User-ID, tenant: X-Tenant }
  unused:
    type: jwt
    secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK
    forward_claims: { org: X_Org }
routes:
  - name: api
    match: { path_prefix: /api/ }
    upstream: up
    plugins: [used, { jwt: { secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK, forward_claims: { team: Team-Name } } }]
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

// A reload reports the new configuration's warnings and logs them; the
// first build logs its own at start.
func TestWarningsAtStartAndReload(t *testing.T) {
	const base = `
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
routes:
  - name: keyed
    match: { path_prefix: / }
    upstream: up
    plugins: [{ ratelimit: { key: "header:%s", limit: 5, period: 1m } }]
`
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(h string) {
		if err := os.WriteFile(file, []byte(strings.Replace(base, "%s", h, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("X-A")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.New(core), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessageSnippet("routes[0].plugins[0].ratelimit.key: warning: a limit keyed on X-A").Len(); n != 1 {
		t.Fatalf("start logged %d warnings, want 1: %v", n, logs.All())
	}
	write("X-B")
	res, err := gw.Reload()
	if err != nil {
		t.Fatal(err)
	}
	gw.LogReload("test", res, nil)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "a limit keyed on X-B is advisory") {
		t.Fatalf("reload warnings = %q", res.Warnings)
	}
	if n := logs.FilterMessageSnippet("configuration warning: " + file + ":7: routes[0].plugins[0].ratelimit.key: warning: a limit keyed on X-B").Len(); n != 1 {
		t.Fatalf("reload logged %d warnings, want 1: %v", n, logs.All())
	}
	_ = gw.Shutdown(0, time.Second)
}
