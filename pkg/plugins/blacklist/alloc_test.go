//go:build !race

package blacklist

import (
	"context"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/valyala/fasthttp"
)

func TestHandleDoesNotAllocate(t *testing.T) {
	mem := newMemory(t, time.Now)
	if err := mem.Revoke(context.Background(), "revoked-jti", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := mustBuild(t, "", &plugins.Env{Route: "bl-alloc", Store: mem})
	tests := []struct {
		name        string
		giveJTI     string
		giveAuth    bool
		wantVerdict plugins.Verdict
	}{
		{name: "not revoked", giveJTI: "jti-1", giveAuth: true, wantVerdict: plugins.Next},
		{name: "revoked", giveJTI: "revoked-jti", giveAuth: true, wantVerdict: plugins.Done},
		{name: "anonymous", wantVerdict: plugins.Next},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			st := reqctx.Acquire(&ctx)
			st.Authenticated = tt.giveAuth
			st.Identity.Subject = []byte("ann")
			st.Identity.JTI = []byte(tt.giveJTI)
			st.Identity.IssuedAtMs = time.Now().UnixMilli()
			st.Token = append(st.Token, "header.payload.signature"...)
			if got := p.Handle(&ctx); got != tt.wantVerdict {
				t.Fatalf("verdict %v, want %v", got, tt.wantVerdict)
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

// TestAuthChainDoesNotAllocate checks the steady state of jwt → blacklist →
// rbac on the in-process store: a cached token, not revoked, allowed.
func TestAuthChainDoesNotAllocate(t *testing.T) {
	mem := newMemory(t, time.Now)
	chain := authChain(t, mem)
	tok := chainToken(t, "u-admin", "admin", "j-admin", time.Now().Add(-time.Minute))
	var ctx fasthttp.RequestCtx
	reqctx.Acquire(&ctx)
	ctx.Request.Header.Set("Authorization", "Bearer "+tok)
	if v, _ := chain.Handle(&ctx); v != plugins.Next {
		t.Fatalf("refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if v, _ := chain.Handle(&ctx); v != plugins.Next {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("the chain allocates %.1f times per request, want 0", allocs)
	}
}

// TestHandleRedisCacheHitDoesNotAllocate: on Redis with client-side
// caching, behind the guard the gateway uses, a check answered from memory
// allocates nothing, revoked or not.
func TestHandleRedisCacheHitDoesNotAllocate(t *testing.T) {
	srv := redistest.Start(t)
	cfg := &config.Redis{Addrs: []string{srv.Addr()}}
	rs, err := redis.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := redis.Guard(rs, cfg)
	t.Cleanup(func() { _ = g.Close() })
	if err := g.Revoke(context.Background(), "revoked-jti", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := mustBuild(t, "cache_ttl: 1m", &plugins.Env{Route: "bl-alloc-redis", Store: g})
	for _, tt := range []struct {
		jti  string
		want plugins.Verdict
	}{{"jti-1", plugins.Next}, {"revoked-jti", plugins.Done}} {
		t.Run(tt.jti, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			st := reqctx.Acquire(&ctx)
			st.Authenticated = true
			st.Identity.Subject = []byte("ann")
			st.Identity.JTI = []byte(tt.jti)
			st.Identity.IssuedAtMs = time.Now().UnixMilli()
			st.Token = append(st.Token, "header.payload.signature"...)
			if got := p.Handle(&ctx); got != tt.want {
				t.Fatalf("verdict %v, want %v", got, tt.want)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if p.Handle(&ctx) != tt.want {
					t.Fatal("verdict changed")
				}
			})
			if allocs != 0 {
				t.Errorf("Handle allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}
