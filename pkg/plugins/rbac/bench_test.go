package rbac

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// BenchmarkHandle measures an allowed request through a rule and a
// top-level policy with roles and scopes.
func BenchmarkHandle(b *testing.B) {
	p := mustBuild(b, "roles: [admin, ops]\nscopes: [users:read]\nrules:\n  - methods: [DELETE]\n    roles: [admin]", "rbac-bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		st := reqctx.Acquire(&ctx)
		st.Authenticated = true
		st.Identity.Roles = []string{"ops"}
		st.Identity.Scopes = []string{"openid", "profile", "users:read"}
		for pb.Next() {
			if p.Handle(&ctx) != plugins.Next {
				b.Fatal("refused")
			}
		}
	})
}
