//go:build !race

package ratelimit

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// TestHandleZeroAllocs runs whole requests (state, Handle, upstream answer,
// OnResponse, user values reset) on the in-process store: the steady state
// allocates nothing, whether the request passes or is rejected.
func TestHandleZeroAllocs(t *testing.T) {
	tests := []struct {
		name string
		give string
		want plugins.Verdict
	}{
		{"allowed ip", "key: ip\nlimit: 1000000000\nperiod: 1s", plugins.Next},
		{"allowed user and header", "key: [user, header:X-Tenant, route]\nlimit: 1000000000\nperiod: 1s", plugins.Next},
		{"rejected", "key: ip\nlimit: 1\nperiod: 1h", plugins.Done},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := newMemory(t)
			l := build(t, "users", tt.give, st)
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/users/1")
			ctx.Request.Header.Set("X-Tenant", "acme")
			var got plugins.Verdict
			once := func() {
				s := reqctx.Acquire(&ctx)
				s.RequestID = append(s.RequestID[:0], "0f8e4c2a-rid"...)
				s.ClientIP = append(s.ClientIP[:0], "203.0.113.54"...)
				s.Authenticated = true
				s.Identity.Subject = append(s.Identity.Subject[:0], "user-42"...)
				got = l.Handle(&ctx)
				if got == plugins.Next {
					ctx.Response.Reset()
				}
				l.OnResponse(&ctx)
				ctx.ResetUserValues()
			}
			for i := 0; i < 10; i++ {
				once()
			}
			if n := testing.AllocsPerRun(1000, once); n != 0 {
				t.Errorf("%v allocs per request, want 0", n)
			}
			if got != tt.want {
				t.Errorf("verdict %v, want %v", got, tt.want)
			}
		})
	}
}
