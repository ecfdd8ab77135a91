package gateway

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const benchSecret = "TK6bo-R8bGtW0a06HnW4MRSDswKvciCoO207yp8YcgyP_MmM"

const benchConfig = `
log: { access_log: false }
upstreams:
  up: { targets: ["http://%s"] }
plugins:
  auth-jwt: { type: jwt, secret: "%s", issuer: gatewayd-auth, audience: api, forward_claims: { sub: X-User-ID } }
routes:
  - name: pass
    match: { path_prefix: /pass/ }
    upstream: up
  - name: chain
    match: { path_prefix: /chain/ }
    upstream: up
    plugins:
      - request-id
      - auth-jwt
      - blacklist
      - rbac: { roles: [user] }
      - ratelimit: { key: user, limit: 1000000000, period: 1s }
  - name: item
    match: { path: "/items/{id}/parts/{part}" }
    upstream: up
    rewrite: { path: "/internal/parts/{part}/item/{id}" }
  - name: item-canary
    match: { path: "/items/{id}/parts/{part}", headers: { X-Canary: "1" } }
    upstream: up
    rewrite: { path: "/canary/{id}/{part}" }
`

// benchGateway builds a gateway on the memory store in front of a real
// loopback upstream, and a signed access token.
func benchGateway(tb testing.TB) (*Gateway, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }}
	go func() { _ = up.Serve(ln) }()
	tb.Cleanup(func() { _ = up.Shutdown() })
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(benchConfig, ln.Addr(), benchSecret)))
	if err != nil {
		tb.Fatal(err)
	}
	st := memory.New()
	tb.Cleanup(func() { _ = st.Close() })
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	key, err := auth.NewHMACKey([]byte(benchSecret), "")
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	claims := auth.Claims{Subject: "user-1", Email: "u@example.com", Role: "user", Type: auth.TypeAccess,
		ID: "jti-1", IssuedAt: auth.UnixMilli(now.UnixMilli()), ExpiresAt: auth.UnixMilli(now.Add(time.Hour).Unix() * 1000),
		Issuer: "gatewayd-auth", Audience: []string{"api"}}
	tok, err := key.Sign(&claims)
	if err != nil {
		tb.Fatal(err)
	}
	return gw, tok
}

// serveOnce runs one request through gw.Handle on a reused ctx, the way
// fasthttp's server does (user values and response reset afterwards).
func serveOnce(gw *Gateway, ctx *fasthttp.RequestCtx, path string, authz []byte) int {
	return serveOnceHeader(gw, ctx, path, authz, nil, nil)
}

// serveOnceHeader is serveOnce with one more request header (none when
// name is nil).
func serveOnceHeader(gw *Gateway, ctx *fasthttp.RequestCtx, path string, authz, name, value []byte) int {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetHost("gw.example")
	if authz != nil {
		ctx.Request.Header.SetBytesV("Authorization", authz)
	}
	if name != nil {
		ctx.Request.Header.SetBytesKV(name, value)
	}
	gw.Handle(ctx)
	status := ctx.Response.StatusCode()
	ctx.Response.Reset()
	ctx.Request.ResetUserValues()
	return status
}

var benchAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}

func benchHandle(b *testing.B, path string, withToken bool) {
	gw, tok := benchGateway(b)
	var authz []byte
	if withToken {
		authz = []byte("Bearer " + tok)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	if s := serveOnce(gw, &ctx, path, authz); s != 200 {
		b.Fatalf("status %d: %s", s, ctx.Response.Body())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		serveOnce(gw, &ctx, path, authz)
	}
}

// BenchmarkHandlePassthrough is a route with no plugins, upstream on
// loopback (the proxy exchange dominates).
func BenchmarkHandlePassthrough(b *testing.B) { benchHandle(b, "/pass/x", false) }

// BenchmarkHandleRewrite is a route with two path parameters and
// rewrite.path, no plugins.
func BenchmarkHandleRewrite(b *testing.B) { benchHandle(b, "/items/42/parts/7?q=1", false) }

// BenchmarkHandleChainMemory is request-id, jwt, blacklist, rbac and
// ratelimit on the in-process store.
func BenchmarkHandleChainMemory(b *testing.B) { benchHandle(b, "/chain/x", true) }

// BenchmarkHandleChainMemoryAccessLog is the full chain with the JSON
// access log on (written to io.Discard).
func BenchmarkHandleChainMemoryAccessLog(b *testing.B) {
	gw, tok := benchGateway(b)
	withAccessLog(gw)
	authz := []byte("Bearer " + tok)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		serveOnce(gw, &ctx, "/chain/x", authz)
	}
}

func withAccessLog(gw *Gateway) {
	enc := zap.NewProductionEncoderConfig()
	gw.access = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zap.InfoLevel))
	gw.accessLog.Store(true)
}
