package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gorilla/websocket"
)

// wsConfig has WebSocket routes behind the auth chain (jwt, blacklist, a
// user rate limit), a rate-limited one, an open one, and a plain HTTP
// route on the same upstream.
const wsConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server: { shutdown_timeout: 2s, max_connections_per_ip: 2000 }  # 1000 tunnels from one address
log: { level: info }
upstreams:
  ws: { targets: ["http://%s"] }
auth:
  secret: ${JWT_SECRET}
  bcrypt_cost: 4
  users_file: "{{DIR}}/users.db"
plugins:
  auth-jwt:
    type: jwt
    secret: ${JWT_SECRET}
    forward_claims: { sub: X-User-ID }
routes:
  - name: auth
    match: { path_prefix: /v1/auth/ }
    upstream: builtin:auth
  - name: chat
    match: { path_prefix: /ws/chat/ }
    upstream: ws
    websocket: true
    plugins: [request-id, auth-jwt, blacklist]
  - name: limited
    match: { path_prefix: /ws/limited/ }
    upstream: ws
    websocket: true
    plugins: [{ ratelimit: { key: ip, limit: 1, period: 1m } }]
  - name: open
    match: { path_prefix: /ws/open/ }
    upstream: ws
    websocket: true
    websocket_idle_timeout: 1m
  - name: plain
    match: { path_prefix: /plain/ }
    upstream: ws
`

// wsUpstream is a WebSocket echo server on a loopback listener that counts
// the connections it accepted. On the 101 it answers X-Seen-* headers with
// what it received, and /plain/ answers what an HTTP request carried.
type wsUpstream struct {
	addr    string
	accepts atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startWSUpstream(t *testing.T) *wsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &wsUpstream{addr: ln.Addr().String()}
	upgrader := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	mux := http.NewServeMux()
	mux.HandleFunc("/plain/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"proto": r.Proto, "upgrade": r.Header.Get("Upgrade"), "connection": r.Header.Get("Connection"),
			"http2_settings": r.Header.Get("Http2-Settings"),
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := http.Header{}
		h.Set("X-Seen-Path", r.URL.Path)
		h.Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		h.Set("X-Seen-Request-Id", r.Header.Get("X-Request-ID"))
		h.Set("X-Seen-User-Id", r.Header.Get("X-User-ID"))
		c, err := upgrader.Upgrade(w, r, h)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(countingListener{ln, &u.accepts}) }()
	t.Cleanup(func() { _ = srv.Close() })
	return u
}

func startWSGateway(t *testing.T) (*gatewaytest.Process, *wsUpstream) {
	t.Helper()
	up := startWSUpstream(t)
	gw := gatewaytest.Start(t, fmt.Sprintf(wsConfig, up.addr), gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	return gw, up
}

var wsDialer = &websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}

// dialWS opens a WebSocket through the gateway. On a refused handshake it
// returns the HTTP answer.
func dialWS(t *testing.T, gw *gatewaytest.Process, path string, hdr http.Header) (*websocket.Conn, *http.Response, []byte) {
	t.Helper()
	c, resp, err := wsDialer.Dial("ws://"+gw.Addr+path, hdr)
	if err != nil {
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		return nil, resp, b.Bytes()
	}
	return c, resp, nil
}

// waitMetric waits until a series has the wanted value.
func waitMetric(t *testing.T, gw *gatewaytest.Process, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metricValue(t, gw, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebSocketTunnel(t *testing.T) {
	gw, _ := startWSGateway(t)
	signup(t, gw, "ws@example.com", "Ws-Passw0rd!")
	tk := login(t, gw, "ws@example.com", "Ws-Passw0rd!")
	hdr := http.Header{"Authorization": {"Bearer " + tk.Access}, "X-User-ID": {"forged"}}

	// A path that normalises: the upstream sees the normalised one.
	c, resp, body := dialWS(t, gw, "/ws/chat/x/../room%201", hdr)
	if c == nil {
		t.Fatalf("handshake refused: %d %s", resp.StatusCode, body)
	}
	defer c.Close()
	for name, want := range map[string]string{
		"X-Seen-Path":          "/ws/chat/room 1",
		"X-Seen-Forwarded-For": "127.0.0.1",
		"X-Seen-User-Id":       "", // checked below: the token's sub, never the forged value
	} {
		if got := resp.Header.Get(name); want != "" && got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if sub := resp.Header.Get("X-Seen-User-Id"); sub == "" || sub == "forged" {
		t.Errorf("upstream saw X-User-ID %q, want the token's subject", sub)
	}
	if id := resp.Header.Get("X-Seen-Request-Id"); id == "" || id != resp.Header.Get("X-Request-ID") {
		t.Errorf("request id upstream %q, to the client %q", id, resp.Header.Get("X-Request-ID"))
	}
	waitMetric(t, gw, `gateway_websocket_connections{route="chat"}`, 1)

	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	frames := []struct {
		name string
		typ  int
		data []byte
	}{
		{"text", websocket.TextMessage, []byte("hello, tunnel")},
		{"binary", websocket.BinaryMessage, []byte{0, 1, 2, 0xff, 0xfe}},
		{"1MiB", websocket.BinaryMessage, big},
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, f := range frames {
		if err := c.WriteMessage(f.typ, f.data); err != nil {
			t.Fatalf("%s: write: %v", f.name, err)
		}
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: read: %v", f.name, err)
		}
		if typ != f.typ || !bytes.Equal(got, f.data) {
			t.Fatalf("%s: echo differs: type %d, %d bytes", f.name, typ, len(got))
		}
	}

	// Ping: the upstream's pong comes back through the tunnel.
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _, _ = c.ReadMessage() }() // control frames are read by ReadMessage
	select {
	case s := <-pong:
		if s != "p1" {
			t.Fatalf("pong payload %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}

	// A second connection checks the close code passes both ways.
	c2, resp2, body2 := dialWS(t, gw, "/ws/chat/close", hdr)
	if c2 == nil {
		t.Fatalf("second handshake refused: %d %s", resp2.StatusCode, body2)
	}
	var gotCode atomic.Int64
	c2.SetCloseHandler(func(code int, text string) error {
		gotCode.Store(int64(code))
		return nil
	})
	if err := c2.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c2.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("close answer %v, want the upstream's echo of 4001", err)
	}
	c2.Close()
	c.Close()
	waitMetric(t, gw, `gateway_websocket_connections{route="chat"}`, 0)
	if n := metricValue(t, gw, `gateway_websocket_connections_total{route="chat"}`); n != 2 {
		t.Fatalf("gateway_websocket_connections_total = %v, want 2", n)
	}
	if !gw.WaitLog(`"msg":"websocket tunnel closed"`, 5*time.Second) {
		t.Fatalf("no tunnel access line:\n%s", gw.Logs())
	}
	line := tunnelLine(t, gw.Logs(), resp.Header.Get("X-Request-ID"))
	if line["protocol"] != "ws" || line["route"] != "chat" || line["bytes_in"].(float64) < 1<<20 || line["bytes_out"].(float64) < 1<<20 {
		t.Fatalf("tunnel line %v", line)
	}
}

// tunnelLine returns the tunnel access line of a request id.
func tunnelLine(t *testing.T, logs, id string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, "websocket tunnel closed") || !strings.Contains(l, id) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		return m
	}
	t.Fatalf("no tunnel line for %s:\n%s", id, logs)
	return nil
}

func TestWebSocketRefusals(t *testing.T) {
	gw, up := startWSGateway(t)
	signup(t, gw, "ws-refused@example.com", "Ws-Passw0rd!")
	tk := login(t, gw, "ws-refused@example.com", "Ws-Passw0rd!")
	revoked := login(t, gw, "ws-refused@example.com", "Ws-Passw0rd!")
	r := do(t, "POST", gw.URL("/v1/auth/logout"), merge(bearer(revoked.Access), jsonHdr), jsonBody(map[string]string{"refresh_token": revoked.Refresh}))
	if r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	// The first handshake on the rate-limited route takes its only token.
	if c, resp, body := dialWS(t, gw, "/ws/limited/a", nil); c == nil {
		t.Fatalf("first limited handshake: %d %s", resp.StatusCode, body)
	} else {
		c.Close()
	}

	tests := []struct {
		name       string
		givePath   string
		giveHeader http.Header
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{name: "no token", givePath: "/ws/chat/a", wantStatus: 401, wantCode: "unauthorized"},
		{name: "revoked token", givePath: "/ws/chat/a", giveHeader: http.Header{"Authorization": {"Bearer " + revoked.Access}},
			wantStatus: 401, wantCode: "unauthorized", wantMsg: "revoked"},
		{name: "rate limited", givePath: "/ws/limited/b", wantStatus: 429, wantCode: "rate_limited"},
		{name: "websocket not enabled", givePath: "/plain/a", giveHeader: http.Header{"Authorization": {"Bearer " + tk.Access}},
			wantStatus: 400, wantCode: "bad_request", wantMsg: "websocket not enabled on this route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.accepts.Load()
			c, resp, body := dialWS(t, gw, tt.givePath, tt.giveHeader)
			if c != nil {
				c.Close()
				t.Fatal("handshake succeeded")
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			e := decodeError(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
			if e.Error != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Fatalf("error %+v, want %s %q", e, tt.wantCode, tt.wantMsg)
			}
			if n := up.accepts.Load() - before; n != 0 {
				t.Fatalf("the upstream accepted %d connections for a refused handshake", n)
			}
		})
	}

	// Any other Upgrade (curl --http2 over cleartext) is dropped and the
	// request served as HTTP/1.1.
	e := do(t, "GET", gw.URL("/plain/h2c"), map[string]string{
		"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
	}, "")
	if e.Status != 200 {
		t.Fatalf("h2c upgrade request: %d %s", e.Status, e.Body)
	}
	var seen map[string]string
	if err := json.Unmarshal(e.Body, &seen); err != nil {
		t.Fatal(err)
	}
	if seen["proto"] != "HTTP/1.1" || seen["upgrade"] != "" || seen["connection"] != "" || seen["http2_settings"] != "" {
		t.Fatalf("upstream saw %v", seen)
	}
}

func TestWebSocketShutdownClosesTunnels(t *testing.T) {
	gw, _ := startWSGateway(t)
	c, resp, body := dialWS(t, gw, "/ws/open/a", nil)
	if c == nil {
		t.Fatalf("handshake: %d %s", resp.StatusCode, body)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	gw.Signal(syscall.SIGTERM)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ReadMessage()
	took := time.Since(start)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("tunnel ended %v after SIGTERM with %v, want a close frame 1001", took, err)
	}
	// shutdown_timeout is 2s; the tunnel gets it, then the client is told
	// the gateway is going away.
	if took < 1500*time.Millisecond || took > 6*time.Second {
		t.Fatalf("tunnel closed %v after SIGTERM, want about the 2s shutdown_timeout", took)
	}
	code, werr := gw.Wait(10 * time.Second)
	if werr != nil || code != 0 {
		t.Fatalf("exit code %d, %v\n%s", code, werr, gw.Logs())
	}
	if !strings.Contains(gw.Logs(), `"end":"shutdown"`) {
		t.Fatalf("no tunnel line ending in shutdown:\n%s", gw.Logs())
	}
}

func TestWebSocketManyTunnelsNoLeak(t *testing.T) {
	gw, _ := startWSGateway(t)
	const n = 1000
	baseline, _ := processStats(t, gw)
	conns := make([]*websocket.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const dialers = 32
	sem := make(chan struct{}, dialers)
	for i := range conns {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := wsDialer.Dial("ws://"+gw.Addr+"/ws/open/"+strconv.Itoa(i), nil)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			msg := []byte("m" + strconv.Itoa(i))
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				errs <- err
				return
			}
			if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("tunnel %d echo %q: %v", i, got, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitMetric(t, gw, `gateway_websocket_connections{route="open"}`, n)
	g, _ := processStats(t, gw)
	t.Logf("goroutines: %d before, %d with %d tunnels open", baseline, g, n)
	for _, c := range conns {
		c.Close()
	}
	waitMetric(t, gw, `gateway_websocket_connections{route="open"}`, 0)
	// Each tunnel ran on two goroutines. What stays is fasthttp's idle
	// workers (at most one per concurrent handshake, retired after 10s).
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, _ := processStats(t, gw)
		if after <= baseline+dialers+goroutineSlack {
			t.Logf("goroutines after the tunnels closed: %d", after)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d after the tunnels closed, %d before", after, baseline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
