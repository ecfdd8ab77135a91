package e2e

import (
	"bytes"
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/valyala/fasthttp"
)

// trafficJSON is the JSON body the traffic upstream sends for /json?n=N:
// about N bytes, the same for every request.
func trafficJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item %d","tags":["a","b"],"active":true}`, i, i%7)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// startTrafficUpstream runs an upstream that serves JSON of a given size
// (/json?n=N, with an ETag and the Server and X-Powered-By headers
// applications leak), a body it compressed itself (/encoded), and echoes
// anything else.
func startTrafficUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoHandler := echo.Handler("traffic")
	s := &fasthttp.Server{Name: "upstream-server", Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Powered-By", "PHP/5.6")
		switch string(ctx.Path()) {
		case "/gz/json":
			n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("ETag", `"v1"`)
			ctx.SetBody(trafficJSON(n))
		case "/gz/encoded":
			var b bytes.Buffer
			zw := stdgzip.NewWriter(&b)
			_, _ = zw.Write(trafficJSON(8 << 10))
			_ = zw.Close()
			ctx.SetContentType("application/json")
			ctx.Response.Header.Set("Content-Encoding", "gzip")
			ctx.SetBody(b.Bytes())
		default:
			echoHandler(ctx)
		}
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.2, ...), so the gateway sees that peer. It
// never decompresses bodies itself.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}

func doWith(t *testing.T, c *http.Client, method, url string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

const trafficConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
server: { trusted_proxies: ["127.0.0.2"] }
upstreams:
  up: { targets: ["http://%[1]s"] }
  down: { targets: ["http://%[2]s"] }
routes:
  - name: hdr
    match: { path_prefix: /hdr/ }
    upstream: up
    plugins:
      - headers:
          request:  { set: { X-Env: %[3]s }, add: { X-Via: gatewayd }, remove: [X-Debug] }
          response: { set: { Cache-Control: no-store }, remove: [Server, X-Powered-By] }
  - name: hdr-down
    match: { path_prefix: /hdr-down/ }
    upstream: down
    plugins:
      - headers: { response: { set: { Cache-Control: no-store } } }
  - name: ipf
    match: { path_prefix: /ipf/ }
    upstream: up
    plugins:
      - ip-filter: { allow: [%[4]s], deny: ["192.0.2.66"] }
  - name: gz
    match: { path_prefix: /gz/ }
    upstream: up
    plugins:
      - compress: { types: [application/json], min_size: 1KiB }
`

func trafficGateway(t *testing.T) (*gatewaytest.Process, string) {
	t.Helper()
	up := startTrafficUpstream(t)
	down := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	render := func(env, allow string) string { return fmt.Sprintf(trafficConfig, up, down, env, allow) }
	gw := gatewaytest.Start(t, render("prod", `"127.0.0.1", "192.0.2.0/24"`))
	return gw, render("staging", `"127.0.0.0/29", "192.0.2.0/24"`)
}

func TestTrafficPluginsHeaders(t *testing.T) {
	gw, _ := trafficGateway(t)
	c := clientFrom("127.0.0.1")

	r := doWith(t, c, "GET", gw.URL("/hdr/x"), map[string]string{"X-Debug": "1", "X-Env": "dev", "X-Via": "client"})
	e := decodeEcho(t, r)
	if got := header(e, "X-Env"); got != "prod" {
		t.Errorf("upstream X-Env = %q, want prod (set replaces)", got)
	}
	if got := header(e, "X-Via"); got != "client,gatewayd" {
		t.Errorf("upstream X-Via = %q, want client,gatewayd (add appends)", got)
	}
	if got := header(e, "X-Debug"); got != "" {
		t.Errorf("upstream got X-Debug %q, want it removed", got)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("response Cache-Control = %q", got)
	}
	// The upstream's Server is gone; the gateway names itself instead.
	if r.Header.Get("Server") != "gatewayd" || r.Header.Get("X-Powered-By") != "" {
		t.Errorf("response Server %q (want gatewayd, not the upstream's), X-Powered-By %q", r.Header.Get("Server"), r.Header.Get("X-Powered-By"))
	}

	// The gateway's own error answers get the response edits too.
	r = doWith(t, c, "GET", gw.URL("/hdr-down/x"), nil)
	if r.Status != http.StatusBadGateway || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("502 answer: status %d, Cache-Control %q", r.Status, r.Header.Get("Cache-Control"))
	}
	decodeError(t, r)
}

func TestTrafficPluginsIPFilter(t *testing.T) {
	gw, _ := trafficGateway(t)
	url := gw.URL("/ipf/x")
	tests := []struct {
		name      string
		givePeer  string
		giveXFF   string
		wantAllow bool
	}{
		{name: "allowed peer", givePeer: "127.0.0.1", wantAllow: true},
		{name: "other peer", givePeer: "127.0.0.3", wantAllow: false},
		{name: "spoofed XFF from an untrusted peer", givePeer: "127.0.0.3", giveXFF: "192.0.2.10", wantAllow: false},
		{name: "spoofed allowed XFF from an untrusted peer", givePeer: "127.0.0.3", giveXFF: "127.0.0.1", wantAllow: false},
		{name: "XFF of a trusted proxy", givePeer: "127.0.0.2", giveXFF: "192.0.2.10", wantAllow: true},
		{name: "trusted proxy, client denied", givePeer: "127.0.0.2", giveXFF: "192.0.2.66", wantAllow: false},
		{name: "trusted proxy, client not allowed", givePeer: "127.0.0.2", giveXFF: "203.0.113.5", wantAllow: false},
		{name: "trusted proxy, spoofed left entry", givePeer: "127.0.0.2", giveXFF: "192.0.2.10, 203.0.113.5", wantAllow: false},
		{name: "trusted proxy itself", givePeer: "127.0.0.2", wantAllow: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.giveXFF != "" {
				hdr["X-Forwarded-For"] = tt.giveXFF
			}
			r := doWith(t, clientFrom(tt.givePeer), "GET", url, hdr)
			if tt.wantAllow {
				decodeEcho(t, r)
				return
			}
			if r.Status != http.StatusForbidden {
				t.Fatalf("status %d, want 403: %s", r.Status, r.Body)
			}
			if e := decodeError(t, r); e.Error != "forbidden" || e.Message != "client address not allowed" {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
	if v := metricValue(t, gw, `gateway_ip_filter_rejected_total{route="ipf"}`); v < 6 {
		t.Errorf("gateway_ip_filter_rejected_total = %v, want at least 6", v)
	}
}

// A reload changes the plugins' settings for the next request.
func TestTrafficPluginsReload(t *testing.T) {
	gw, next := trafficGateway(t)
	c3 := clientFrom("127.0.0.3")
	if r := doWith(t, c3, "GET", gw.URL("/ipf/x"), nil); r.Status != http.StatusForbidden {
		t.Fatalf("before reload: status %d", r.Status)
	}
	gw.WriteConfig(next)
	if status, body := reload(t, gw); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, body)
	}
	decodeEcho(t, doWith(t, c3, "GET", gw.URL("/ipf/x"), nil))
	e := decodeEcho(t, doWith(t, c3, "GET", gw.URL("/hdr/x"), nil))
	if got := header(e, "X-Env"); got != "staging" {
		t.Fatalf("after reload X-Env = %q, want staging", got)
	}
}

func TestTrafficPluginsCompress(t *testing.T) {
	gw, _ := trafficGateway(t)
	c := clientFrom("127.0.0.1")
	want := trafficJSON(16 << 10)

	for _, tt := range []struct{ giveAccept, wantEnc string }{
		{giveAccept: "gzip", wantEnc: "gzip"},
		{giveAccept: "br", wantEnc: "br"},
		{giveAccept: "gzip, deflate, br", wantEnc: "br"},
		{giveAccept: "br;q=0.5, gzip;q=0.9", wantEnc: "gzip"},
		{giveAccept: "gzip;q=0.4, br;q=1.0", wantEnc: "br"},
		{giveAccept: "br;q=0, *;q=0.3", wantEnc: "gzip"},
	} {
		t.Run(tt.giveAccept, func(t *testing.T) {
			r := doWith(t, c, "GET", gw.URL("/gz/json?n=16384"), map[string]string{"Accept-Encoding": tt.giveAccept})
			if r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			if got := r.Header.Get("Content-Encoding"); got != tt.wantEnc {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.wantEnc)
			}
			if cl := r.Header.Get("Content-Length"); cl != strconv.Itoa(len(r.Body)) || len(r.Body) >= len(want) {
				t.Fatalf("Content-Length %s, body %d bytes from %d", cl, len(r.Body), len(want))
			}
			if !bytes.Equal(plugintest.Decompress(t, tt.wantEnc, r.Body), want) {
				t.Fatal("decompressed body differs from the upstream's")
			}
			if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("Vary %q", r.Header.Values("Vary"))
			}
			if got := r.Header.Get("ETag"); got != `W/"v1"` {
				t.Errorf("ETag %q, want the weak W/\"v1\"", got)
			}
		})
	}

	t.Run("identity when not accepted", func(t *testing.T) {
		for _, accept := range []string{"", "identity", "gzip;q=0, br;q=0"} {
			hdr := map[string]string{}
			if accept != "" {
				hdr["Accept-Encoding"] = accept
			}
			r := doWith(t, c, "GET", gw.URL("/gz/json?n=16384"), hdr)
			if r.Header.Get("Content-Encoding") != "" || !bytes.Equal(r.Body, want) {
				t.Fatalf("Accept-Encoding %q: Content-Encoding %q, %d bytes", accept, r.Header.Get("Content-Encoding"), len(r.Body))
			}
			if r.Header.Get("Vary") != "Accept-Encoding" || r.Header.Get("ETag") != `"v1"` {
				t.Fatalf("Accept-Encoding %q: Vary %q, ETag %q", accept, r.Header.Get("Vary"), r.Header.Get("ETag"))
			}
		}
	})

	t.Run("below min_size", func(t *testing.T) {
		r := doWith(t, c, "GET", gw.URL("/gz/json?n=300"), map[string]string{"Accept-Encoding": "gzip, br"})
		if r.Header.Get("Content-Encoding") != "" || !bytes.Equal(r.Body, trafficJSON(300)) {
			t.Fatalf("Content-Encoding %q, body %d bytes", r.Header.Get("Content-Encoding"), len(r.Body))
		}
	})

	t.Run("already encoded", func(t *testing.T) {
		direct := doWith(t, c, "GET", "http://"+upstreamOf(t, gw)+"/gz/encoded", nil)
		r := doWith(t, c, "GET", gw.URL("/gz/encoded"), map[string]string{"Accept-Encoding": "br, gzip"})
		if r.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(r.Body, direct.Body) {
			t.Fatalf("Content-Encoding %q, body differs from the upstream's: %v", r.Header.Get("Content-Encoding"), !bytes.Equal(r.Body, direct.Body))
		}
		if !bytes.Equal(plugintest.Decompress(t, "gzip", r.Body), trafficJSON(8<<10)) {
			t.Fatal("one gunzip does not give the original: compressed twice")
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		r := doWith(t, c, "HEAD", gw.URL("/gz/json?n=16384"), map[string]string{"Accept-Encoding": "gzip"})
		if r.Status != 200 || r.Header.Get("Content-Encoding") != "" {
			t.Fatalf("status %d, Content-Encoding %q", r.Status, r.Header.Get("Content-Encoding"))
		}
	})
}

// upstreamOf returns the traffic upstream's address from the running
// gateway's configuration.
func upstreamOf(t *testing.T, gw *gatewaytest.Process) string {
	t.Helper()
	data, err := os.ReadFile(gw.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, `up: { targets: ["http://`)
	if i < 0 {
		t.Fatal("no upstream in the configuration")
	}
	s = s[i+len(`up: { targets: ["http://`):]
	return s[:strings.IndexByte(s, '"')]
}

// gatewayd -check refuses a headers plugin that would write an identity
// header, naming the file, line and header.
func TestTrafficPluginsHeadersIdentityRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	cfg := `version: 1
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
plugins:
  auth: { type: jwt, secret: WcQPKSn5TKZo4mhVAuhzAMsPs182vDubrrNsx57eYYDnG6NK, forward_claims: { sub: X-User-ID, tenant: X-Tenant } }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: up
    plugins:
      - auth
      - headers:
          request:
            set: { x_tenant: acme }
            add: { X-User-Role: admin }
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := gatewaytest.RunCheck(t, file)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		file + ":13: routes[0].plugins[1].headers.request.set.x_tenant: x_tenant is an identity header",
		file + ":14: routes[0].plugins[1].headers.request.add.X-User-Role: X-User-Role is an identity header",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output\n%s\nwant it to contain\n%s", out, want)
		}
	}
}
