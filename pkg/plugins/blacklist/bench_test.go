package blacklist

import (
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// BenchmarkHandle measures the not-revoked path on the in-process store.
func BenchmarkHandle(b *testing.B) {
	mem := newMemory(b, time.Now)
	p := mustBuild(b, "", &plugins.Env{Route: "bl-bench", Store: mem})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		st := reqctx.Acquire(&ctx)
		st.Authenticated = true
		st.Identity.Subject = []byte("0b0c3c8e-5f6a-4d6b-9d51-3c1f0c7a9e21")
		st.Identity.JTI = []byte("5b1f7a0e-2c4d-4e8f-a1b2-c3d4e5f60718")
		st.Identity.IssuedAtMs = time.Now().UnixMilli()
		st.Token = append(st.Token, "header.payload.signature"...)
		for pb.Next() {
			if p.Handle(&ctx) != plugins.Next {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkAuthChain measures jwt (cache hit) → blacklist → rbac on the
// in-process store.
func BenchmarkAuthChain(b *testing.B) {
	mem := newMemory(b, time.Now)
	chain := authChain(b, mem)
	tok := chainToken(b, "u-admin", "admin", "j-admin", time.Now().Add(-time.Minute))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		reqctx.Acquire(&ctx)
		ctx.Request.Header.Set("Authorization", "Bearer "+tok)
		for pb.Next() {
			if v, _ := chain.Handle(&ctx); v != plugins.Next {
				b.Fatal("refused")
			}
		}
	})
}
