package chain

import (
	"os/exec"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestChainIsActive checks that the benchmarks measure the chain they
// claim: the chain route answers with its request id and rate-limit
// headers, and refuses a tampered token; passthrough does neither.
func TestChainIsActive(t *testing.T) {
	tests := []struct {
		name      string
		giveRedis bool
		giveSync  string
	}{
		{name: "memory", giveSync: "exact"},
		{name: "redis", giveRedis: true, giveSync: "exact"},
		{name: "redis-lease", giveRedis: true, giveSync: "lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath("redis-server"); tt.giveRedis && err != nil {
				t.Skip("redis-server not installed")
			}
			f := newFixtureSync(t, tt.giveRedis, tt.giveSync)
			ctx := newCtx()
			ctx.Request.Header.SetMethodBytes(methodGet)
			ctx.Request.SetRequestURIBytes(pathChain)
			ctx.Request.Header.SetBytesKV(hdrAuthz, f.authz[3])
			f.gw.Handle(ctx)
			if s := ctx.Response.StatusCode(); s != fasthttp.StatusOK {
				t.Fatalf("chain status %d: %s", s, ctx.Response.Body())
			}
			for _, h := range []string{"X-Request-Id", "Ratelimit-Remaining"} {
				if len(ctx.Response.Header.Peek(h)) == 0 {
					t.Fatalf("chain response lacks %s:\n%s", h, ctx.Response.Header.String())
				}
			}
			tampered := append([]byte(nil), f.authz[3]...)
			tampered[len(tampered)-2] ^= 1
			if s := f.serve(newCtx(), pathChain, tampered); s != fasthttp.StatusUnauthorized {
				t.Fatalf("tampered token: status %d, want 401", s)
			}
			if s := f.serve(newCtx(), pathChain, nil); s != fasthttp.StatusUnauthorized {
				t.Fatalf("no token: status %d, want 401", s)
			}
			if s := f.serve(newCtx(), pathPass, nil); s != fasthttp.StatusOK {
				t.Fatalf("passthrough status %d", s)
			}
		})
	}
}
