//go:build !race

package apikey

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestHandleDoesNotAllocate(t *testing.T) {
	file := writeKeys(t, keysJSON())
	tests := []struct {
		name        string
		giveYAML    string
		giveKey     string
		giveURI     string
		wantVerdict plugins.Verdict
	}{
		{name: "valid header key", giveYAML: "keep_credential: true\nkeys_file: " + file, giveKey: ciKey, giveURI: "/v1/x", wantVerdict: plugins.Next},
		{name: "valid query key", giveYAML: "query: api_key\nkeep_credential: true\nkeys_file: " + file, giveURI: "/v1/x?api_key=" + ciKey, wantVerdict: plugins.Next},
		{name: "unknown key", giveYAML: "keys_file: " + file, giveKey: "nope", giveURI: "/v1/x", wantVerdict: plugins.Done},
		{name: "missing key", giveYAML: "keys_file: " + file, giveURI: "/v1/x", wantVerdict: plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.giveYAML, "apikey-alloc")
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI(tt.giveURI)
			if tt.giveKey != "" {
				ctx.Request.Header.Set("X-API-Key", tt.giveKey)
			}
			reqctx.Acquire(&ctx)
			if got := p.Handle(&ctx); got != tt.wantVerdict {
				t.Fatalf("verdict %v, want %v (%s)", got, tt.wantVerdict, ctx.Response.Body())
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

func BenchmarkHandle(b *testing.B) {
	file := writeKeys(b, keysJSON())
	p := mustBuild(b, "keep_credential: true\nkeys_file: "+file, "apikey-bench")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/v1/x")
		ctx.Request.Header.Set("X-API-Key", ciKey)
		reqctx.Acquire(&ctx)
		for pb.Next() {
			if p.Handle(&ctx) != plugins.Next {
				b.Fatal("refused")
			}
		}
	})
}
