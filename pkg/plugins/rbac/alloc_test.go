//go:build !race

package rbac

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestHandleDoesNotAllocate(t *testing.T) {
	p := mustBuild(t, "roles: [admin]\nscopes: [users:read]\nrules:\n  - methods: [DELETE]\n    roles: [root]", "rbac-alloc")
	tests := []struct {
		name        string
		giveMethod  string
		giveAuth    bool
		giveRole    string
		wantVerdict plugins.Verdict
	}{
		{name: "allowed", giveMethod: "GET", giveAuth: true, giveRole: "admin", wantVerdict: plugins.Next},
		{name: "forbidden by rule", giveMethod: "DELETE", giveAuth: true, giveRole: "admin", wantVerdict: plugins.Done},
		{name: "anonymous", giveMethod: "GET", wantVerdict: plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tt.giveMethod)
			st := reqctx.Acquire(&ctx)
			st.Authenticated = tt.giveAuth
			st.Identity.Roles = []string{tt.giveRole}
			st.Identity.Scopes = []string{"openid", "users:read"}
			if got := p.Handle(&ctx); got != tt.wantVerdict {
				t.Fatalf("verdict %v, want %v", got, tt.wantVerdict)
			}
			allocs := testing.AllocsPerRun(1000, func() { p.Handle(&ctx) })
			if allocs != 0 {
				t.Errorf("Handle allocates %.1f times per request, want 0", allocs)
			}
		})
	}
}
