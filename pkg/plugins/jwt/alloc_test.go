//go:build !race

package jwt

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

func TestHandleDoesNotAllocate(t *testing.T) {
	good := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), claims(), "")
	tests := []struct {
		name        string
		giveYAML    string
		giveHeader  string
		giveCookie  string
		wantVerdict plugins.Verdict
	}{
		{name: "cache hit", giveYAML: hsConfig, giveHeader: "Bearer " + good, wantVerdict: plugins.Next},
		{name: "cache hit from a cookie", giveYAML: hsConfig + "cookie: session\n", giveCookie: good, wantVerdict: plugins.Next},
		{name: "optional anonymous", giveYAML: hsConfig + "optional: true\n", wantVerdict: plugins.Next},
		{name: "missing token", giveYAML: hsConfig, wantVerdict: plugins.Done},
		{name: "refused before parsing", giveYAML: hsConfig, giveHeader: "Bearer a.b.c.d", wantVerdict: plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.giveYAML, newClock(t0).env("alloc"))
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/users/me")
			if tt.giveHeader != "" {
				ctx.Request.Header.Set("Authorization", tt.giveHeader)
			}
			if tt.giveCookie != "" {
				ctx.Request.Header.SetCookie("session", tt.giveCookie)
			}
			reqctx.Acquire(&ctx)
			if got := p.Handle(&ctx); got != tt.wantVerdict {
				t.Fatalf("verdict %v, want %v (status %d %s)", got, tt.wantVerdict, ctx.Response.StatusCode(), ctx.Response.Body())
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if p.Handle(&ctx) != tt.wantVerdict {
					t.Fatal("verdict changed")
				}
			})
			if allocs != 0 {
				t.Errorf("Handle allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}

// TestHandleProvidersDoesNotAllocate checks the cache-hit path of a plugin
// with seven providers (remote key sets, a secret, claim paths, list
// claims forwarded comma-separated): the normalised identity is shared
// with the cache entry, so a hit copies bytes into pooled buffers only.
func TestHandleProvidersDoesNotAllocate(t *testing.T) {
	f := newIdPFixture(t, "alloc-providers")
	tests := []struct {
		name string
		tok  string
	}{
		{"auth0", f.auth0Token(t)},
		{"keycloak", f.keycloakToken(t, jwtlib.SigningMethodES256, f.keycloakEC, "kc-ec")},
		{"entra", f.entraToken(t)},
		{"own", f.ownToken(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/users/me")
			ctx.Request.Header.Set("Authorization", "Bearer "+tt.tok)
			reqctx.Acquire(&ctx)
			if got := f.p.Handle(&ctx); got != plugins.Next {
				t.Fatalf("refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if f.p.Handle(&ctx) != plugins.Next {
					t.Fatal("verdict changed")
				}
			})
			if allocs != 0 {
				t.Errorf("Handle allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}
