//go:build !race

package gateway

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHandleZeroAlloc asserts the steady-state request path (routing,
// header hygiene, the full plugin chain on the memory store, the upstream
// exchange, metrics) does not allocate.
func TestHandleZeroAlloc(t *testing.T) {
	gw, tok := benchGateway(t)
	logged, _ := benchGateway(t)
	withAccessLog(logged)
	tests := []struct {
		gw    *Gateway
		name  string
		path  string
		authz []byte
	}{
		{name: "passthrough", path: "/pass/x"},
		{name: "full chain", path: "/chain/x", authz: []byte("Bearer " + tok)},
		{name: "not found", path: "/nothing"},
		{name: "access log on", gw: logged, path: "/pass/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gw
			if tt.gw != nil {
				gw = tt.gw
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			for i := 0; i < 10; i++ {
				serveOnce(gw, &ctx, tt.path, tt.authz)
			}
			if n := testing.AllocsPerRun(200, func() { serveOnce(gw, &ctx, tt.path, tt.authz) }); n != 0 {
				t.Fatalf("%v allocs per request", n)
			}
		})
	}
}
