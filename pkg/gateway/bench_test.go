package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/otlptest"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/tracing"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const benchSecret = "TK6bo-R8bGtW0a06HnW4MRSDswKvciCoO207yp8YcgyP_MmM"

const benchConfig = `
log: { access_log: false }
%s
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
	return benchGatewayWith(tb, "")
}

// benchGatewayTracing is benchGateway with tracing on at ratio, exporting
// to a loopback OTLP receiver.
func benchGatewayTracing(tb testing.TB, ratio string) (*Gateway, string) {
	tb.Helper()
	rcv := otlptest.StartDiscarding(tb)
	gw, tok := benchGatewayWith(tb, "tracing: { otlp_endpoint: \""+rcv.URL+"\", sample_ratio: "+ratio+" }")
	tb.Cleanup(func() { _ = gw.cur.Load().tracer.Shutdown(context.Background()) })
	return gw, tok
}

// benchGatewayWith is benchGateway with extra top-level configuration.
func benchGatewayWith(tb testing.TB, extra string) (*Gateway, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }}
	go func() { _ = up.Serve(ln) }()
	tb.Cleanup(func() { _ = up.Shutdown() })
	cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(benchConfig, extra, ln.Addr(), benchSecret)))
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

// BenchmarkHandleChainTracing is the full chain with tracing off, and on
// at ratio 0.1 and 1 (spans exported to a loopback OTLP/HTTP receiver), for
// requests without a traceparent.
func BenchmarkHandleChainTracing(b *testing.B) {
	tests := []struct {
		name  string
		ratio string
	}{
		{name: "off"},
		{name: "ratio=0", ratio: "0"},
		{name: "ratio=0.1", ratio: "0.1"},
		{name: "ratio=1", ratio: "1"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			var (
				gw  *Gateway
				tok string
			)
			if tt.ratio == "" {
				gw, tok = benchGateway(b)
			} else {
				gw, tok = benchGatewayTracing(b, tt.ratio)
			}
			authz := []byte("Bearer " + tok)
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			if s := serveOnce(gw, &ctx, "/chain/x", authz); s != 200 {
				b.Fatalf("status %d: %s", s, ctx.Response.Body())
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				serveOnce(gw, &ctx, "/chain/x", authz)
			}
			reportCPU(b, cpu)
		})
	}
}

func withAccessLog(gw *Gateway) {
	enc := zap.NewProductionEncoderConfig()
	gw.access = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zap.InfoLevel))
	gw.accessLog.Store(true)
}

// BenchmarkTraceOverhead is the tracing work of one proxied request alone
// (trace context, server span, one attempt span, access log trace id),
// without the network exchange that dominates BenchmarkHandleChainTracing:
// tracing off, and on at ratios 0, 0.1 and 1, for requests without a
// traceparent.
func BenchmarkTraceOverhead(b *testing.B) {
	tests := []struct {
		name  string
		ratio string
	}{
		{name: "off"},
		{name: "ratio=0", ratio: "0"},
		{name: "ratio=0.1", ratio: "0.1"},
		{name: "ratio=1", ratio: "1"},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			var tr *tracing.Tracer
			if tt.ratio != "" {
				rcv := otlptest.StartDiscarding(b)
				cfg := &config.Tracing{OTLPEndpoint: rcv.URL, ServiceName: "bench"}
				cfg.SampleRatio, _ = strconv.ParseFloat(tt.ratio, 64)
				var err error
				if tr, err = tracing.New(cfg, tracing.Options{}); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			ctx.Request.SetRequestURI("/chain/x")
			ctx.Request.Header.SetHost("gw.example")
			r := &route{name: "chain", pattern: "/chain/*"}
			var st reqctx.State
			st.Route, st.Upstream = "chain", "up"
			st.Path = append(st.Path, "/chain/x"...)
			st.ClientIP = append(st.ClientIP, "127.0.0.1"...)
			a := proxy.Attempt{Upstream: "up", Target: "http://127.0.0.1:9002", Addr: "127.0.0.1:9002", Client: proxy.ClientHTTP}
			ctx.Response.SetStatusCode(200)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				rt := acquireTrace()
				rt.protocol = protoHTTP11
				rt.begin(&ctx, tr, time.Now())
				rt.setRoute(r)
				rt.AttemptStart(&ctx.Request, a)
				rt.AttemptEnd(&ctx.Response, nil)
				rt.end(&ctx, &st, 200)
				_ = rt.traceID()
				rt.release()
				ctx.Request.Header.Del("traceparent")
			}
			reportCPU(b, cpu)
		})
	}
}

// processCPU returns the CPU time the process used so far (user and
// system, every goroutine: the span exporter's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start: on a
// loaded host it varies far less than ns/op, which counts the time other
// processes hold the CPU.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
