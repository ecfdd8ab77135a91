package blacklist

import (
	"context"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/jwt"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

const chainSecret = "bOmv1tAmXKgU77Tmb1EMVSAoZ_V1RoJZ"

// authChain builds jwt → blacklist → rbac on an in-process store, as a
// route of the gateway would run them.
func authChain(t testing.TB, mem *memory.Store) *plugins.Chain {
	t.Helper()
	env := &plugins.Env{Route: "chain", Store: mem, Resources: plugins.NewResources()}
	build := func(f plugins.Factory, src string) plugins.Plugin {
		p, err := f.Build(section(t, src), env)
		if err != nil {
			t.Fatalf("%s: %v", f.Kind(), err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	return plugins.NewChain([]plugins.Plugin{
		build(jwt.Factory{}, "secret: "+chainSecret+"\nissuer: gatewayd-auth\nforward_claims: {sub: X-User-ID}"),
		build(Factory{}, ""),
		build(rbac.Factory{}, "roles: [admin]"),
	}, []string{"jwt", "blacklist", "rbac"})
}

func chainToken(t testing.TB, sub, role, jti string, iat time.Time) string {
	t.Helper()
	s, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{
		"sub": sub, "role": role, "jti": jti, "typ": "access", "iss": "gatewayd-auth",
		"iat": float64(iat.UnixMilli()) / 1000, "exp": iat.Add(15 * time.Minute).Unix(),
	}).SignedString([]byte(chainSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthChain(t *testing.T) {
	mem := newMemory(t, time.Now)
	chain := authChain(t, mem)
	issued := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	admin := chainToken(t, "u-admin", "admin", "j-admin", issued)
	user := chainToken(t, "u-user", "user", "j-user", issued)
	send := func(tok string) int {
		var ctx fasthttp.RequestCtx
		reqctx.Acquire(&ctx)
		ctx.Request.Header.Set("Authorization", "Bearer "+tok)
		if v, _ := chain.Handle(&ctx); v == plugins.Next {
			return 200
		}
		return ctx.Response.StatusCode()
	}
	if got := send(admin); got != 200 {
		t.Fatalf("admin: %d, want 200", got)
	}
	if got := send(user); got != 403 {
		t.Fatalf("user: %d, want 403", got)
	}
	if err := mem.Revoke(context.Background(), "j-admin", issued.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := send(admin); got != 401 {
		t.Fatalf("admin after logout: %d, want 401 (the verified-token cache must not hide a revocation)", got)
	}
	second := chainToken(t, "u-admin", "admin", "j-admin-2", issued.Add(time.Millisecond))
	if got := send(second); got != 200 {
		t.Fatalf("admin's other session: %d, want 200", got)
	}
	if err := mem.RevokeAll(context.Background(), "u-admin", issued.Add(time.Millisecond), time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := send(second); got != 401 {
		t.Fatalf("admin after logout-all: %d, want 401", got)
	}
	if got := send(chainToken(t, "u-admin", "admin", "j-admin-3", issued.Add(2*time.Millisecond))); got != 200 {
		t.Fatalf("token issued after the mark: %d, want 200", got)
	}
}
