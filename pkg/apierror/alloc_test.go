//go:build !race

package apierror

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func TestWriteZeroAlloc(t *testing.T) {
	var ctx fasthttp.RequestCtx
	st := reqctx.Acquire(&ctx)
	st.RequestID = append(st.RequestID, "0b5c6f1e-2f5e-4a55-9d4e-0d8f6a0c2b11"...)
	n := testing.AllocsPerRun(1000, func() {
		WriteInt(&ctx, 429, CodeRateLimited, "rate limit exceeded", "retry_after", 12)
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
