//go:build !race

package chain

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
)

// TestChainZeroAlloc asserts that a warmed-up gateway serves requests
// without allocating, with the requests' tokens rotating over 1000 users:
// routing, header hygiene, the full chain on the in-process store, the
// upstream exchange and metrics.
func TestChainZeroAlloc(t *testing.T) {
	tests := []struct {
		name       string
		givePath   []byte
		giveTokens bool
	}{
		{name: "passthrough", givePath: pathPass},
		{name: "chain memory", givePath: pathChain, giveTokens: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false)
			ctx := newCtx()
			if tt.giveTokens {
				f.warm(t, ctx, tt.givePath)
			}
			i := 0
			allocs := testing.AllocsPerRun(2*users, func() {
				var authz []byte
				if tt.giveTokens {
					authz = f.authz[i%len(f.authz)]
					i++
				}
				if s := f.serve(ctx, tt.givePath, authz); s != 200 {
					t.Fatalf("status %d", s)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocs per request, want 0", allocs)
			}
		})
	}
}

// TestPluginChainZeroAlloc asserts the same of the five plugins alone.
func TestPluginChainZeroAlloc(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	c := pluginChain(t, st)
	authz := tokens(t)
	ctx := newCtx()
	for _, a := range authz {
		if runChain(c, ctx, a) != plugins.Next {
			t.Fatal("warm-up request refused")
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(2*users, func() {
		if runChain(c, ctx, authz[i%len(authz)]) != plugins.Next {
			t.Fatalf("refused: %s", ctx.Response.Body())
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per request, want 0", allocs)
	}
}
