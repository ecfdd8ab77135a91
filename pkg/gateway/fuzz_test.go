package gateway

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/valyala/fasthttp"
)

// FuzzCheck builds arbitrary configurations: whatever the file says, the
// build (run by -check and by every reload) must return errors, not panic.
func FuzzCheck(f *testing.F) {
	for _, dir := range []string{"../../testdata/config/valid", "../../testdata/config/invalid", "../../configs"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("routes: [{name: a, match: {path: /}, upstream: u, plugins: [{ratelimit: {limit: 1, period: 1s, cost: 2}}]}]\nupstreams: {u: {targets: ['http://127.0.0.1:1']}}"))
	f.Add([]byte("plugins: {x: {type: jwt}}\nroutes: [{name: a, match: {path_prefix: /}, upstream: u, plugins: [x, rbac]}]\nupstreams: {u: {targets: ['http://127.0.0.1:1']}}"))
	reg := builtin.Registry()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		_ = Check(cfg, err, reg)
	})
}

// FuzzHandle sends arbitrary requests through the full chain: the gateway
// answers every one (any status) without panicking.
func FuzzHandle(f *testing.F) {
	gw, tok := benchGateway(f)
	seeds := []string{
		"GET /pass/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /chain/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"GET /chain/%2e%2e/pass HTTP/1.1\r\nHost: a\r\nAuthorization: bearer x.y.z\r\nX-Forwarded-For: 1.1.1.1, junk\r\n\r\n",
		"POST /pass/../chain HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: X-User-ID, close\r\nX-User-ID: root\r\n\r\nabc",
		"GET //pass//x?%zz HTTP/1.1\r\nHost: a\r\nX-Request-ID: " + string(bytes.Repeat([]byte("a"), 200)) + "\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return // fasthttp's server answers unparsable requests itself
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, benchAddr, nil)
		gw.Handle(&ctx)
		if ctx.Response.StatusCode() == 0 {
			t.Fatal("no status written")
		}
		ctx.Request.ResetUserValues()
	})
}
