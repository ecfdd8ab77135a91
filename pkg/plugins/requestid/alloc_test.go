//go:build !race

package requestid

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestZeroAlloc(t *testing.T) {
	p := build(t, "{header: X-Trace-ID}")
	var ctx fasthttp.RequestCtx
	st := reqctx.Acquire(&ctx)
	buf := make([]byte, 0, 64)
	n := testing.AllocsPerRun(1000, func() {
		buf = Assign(buf, nil)
		st.RequestID = Assign(st.RequestID, []byte("client-id"))
		ctx.Request.Header.Set("X-Trace-ID", "trace-42")
		p.Handle(&ctx)
		p.OnResponse(&ctx)
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
