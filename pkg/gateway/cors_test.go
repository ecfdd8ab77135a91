package gateway

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// A route that lists its methods still answers CORS preflights when it runs
// the cors plugin (the router is told to accept OPTIONS for it), and other
// routes keep answering 405 with Allow.
func TestCORSPreflightOnMethodRestrictedRoute(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
routes:
  - name: api
    match: { path_prefix: /api/, methods: [GET] }
    upstream: up
    plugins: [{ cors: { allowed_origins: ["https://app.example.com"] } }]
  - name: plain
    match: { path_prefix: /plain/, methods: [GET] }
    upstream: up
`))
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	send := func(path string) *fasthttp.Response {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, benchAddr, nil)
		ctx.Request.Header.SetMethod("OPTIONS")
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.Set("Origin", "https://app.example.com")
		ctx.Request.Header.Set("Access-Control-Request-Method", "GET")
		gw.Handle(&ctx)
		var resp fasthttp.Response
		ctx.Response.CopyTo(&resp)
		return &resp
	}
	if r := send("/api/x"); r.StatusCode() != 204 || string(r.Header.Peek("Access-Control-Allow-Origin")) != "https://app.example.com" {
		t.Fatalf("preflight: %d %s", r.StatusCode(), r.Header.String())
	}
	if r := send("/plain/x"); r.StatusCode() != 405 || string(r.Header.Peek("Allow")) != "GET, HEAD" {
		t.Fatalf("OPTIONS on a route without cors: %d %s", r.StatusCode(), r.Header.String())
	}
}
