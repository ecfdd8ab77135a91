package authserver

import (
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/valyala/fasthttp"
)

// BenchmarkMe measures GET /v1/auth/me: verify an HS256 access token, check
// revocation in the in-process store, answer JSON.
func BenchmarkMe(b *testing.B) {
	users, rev := boltBackend().open(b)
	srv, err := New(testConfig(), users, rev, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, err := srv.issue(&store.User{ID: "u", Email: "bench@example.com", Role: "user"}, "s", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	authz := "Bearer " + p.Access
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI(PathMe)
		ctx.Request.Header.Set("Authorization", authz)
		ctx.Request.Header.Set("X-Request-ID", "bench-1")
		srv.Handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		ctx.ResetUserValues()
		ctx.Request.Reset()
		ctx.Response.Reset()
	}
}
