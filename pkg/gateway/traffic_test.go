package gateway

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

const trafficConfig = `
log: { access_log: false }
upstreams:
  up: { targets: ["http://%s"] }
routes:
  - name: traffic
    match: { path_prefix: /traffic/ }
    upstream: up
    plugins:
      - ip-filter: { allow: ["127.0.0.0/8"], deny: ["127.0.0.9"] }
      - headers:
          request:  { set: { X-Env: prod }, remove: [X-Debug] }
          response: { set: { Cache-Control: no-store }, remove: [X-Powered-By] }
      - compress: { types: [application/json], min_size: 1KiB }
`

// trafficGateway runs the traffic plugins in front of an upstream that
// answers 8 KiB of JSON.
func trafficGateway(tb testing.TB) (*Gateway, []byte) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < 8<<10; i++ {
		fmt.Fprintf(&b, `{"id":%d,"name":"user %d","active":true},`, i, i%9)
	}
	b.WriteString(`{}]`)
	body := b.Bytes()
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.Response.Header.Set("X-Powered-By", "app")
		ctx.SetBody(body)
	}}
	go func() { _ = up.Serve(ln) }()
	tb.Cleanup(func() { _ = up.Shutdown() })
	cfg, err := config.Parse("traffic.yaml", []byte(fmt.Sprintf(trafficConfig, ln.Addr())))
	if err != nil {
		tb.Fatal(err)
	}
	st := memory.New()
	tb.Cleanup(func() { _ = st.Close() })
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	return gw, body
}

// serveTraffic runs one request that accepts enc through gw and checks
// the compressed answer.
func serveTraffic(tb testing.TB, gw *Gateway, ctx *fasthttp.RequestCtx, enc []byte) {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/traffic/users")
	ctx.Request.Header.SetHost("gw.example")
	ctx.Request.Header.SetBytesKV(hdrAcceptEncodingTest, enc)
	ctx.Request.Header.SetBytesKV(hdrDebugTest, enc)
	gw.Handle(ctx)
	if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Header.ContentEncoding(), enc) {
		tb.Fatalf("status %d, Content-Encoding %q", ctx.Response.StatusCode(), ctx.Response.Header.ContentEncoding())
	}
	ctx.Response.Reset()
	ctx.Request.ResetUserValues()
}

var (
	hdrAcceptEncodingTest = []byte("Accept-Encoding")
	hdrDebugTest          = []byte("X-Debug")
)

// BenchmarkTrafficPlugins measures a request through ip-filter, headers
// and compress, the upstream exchange and an 8 KiB JSON answer compressed.
func BenchmarkTrafficPlugins(b *testing.B) {
	for _, enc := range []string{"gzip", "br"} {
		b.Run(enc, func(b *testing.B) {
			gw, _ := trafficGateway(b)
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			serveTraffic(b, gw, &ctx, []byte(enc))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				serveTraffic(b, gw, &ctx, []byte(enc))
			}
		})
	}
}
