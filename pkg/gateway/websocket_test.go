package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

const wsUnitConfig = `
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:1" }
server: { max_connections: %d }
log: { access_log: false }
upstreams:
  up: { targets: ["http://%s"] }
routes:
  - name: ws
    match: { path_prefix: / }
    upstream: up
    websocket: true
    plugins: [request-id, { counting: { tag: "%s" } }]
`

// switchingUpstream answers every request with 101 and then echoes bytes,
// enough of a WebSocket server for a tunnel, which never looks at frames.
// stop closes its listener.
func switchingUpstream(t *testing.T) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
				_, _ = io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close() }
}

// wsGateway serves wsUnitConfig (with the plugin tag) on loopback
// listeners in front of a switching upstream.
type wsGateway struct {
	gw    *Gateway
	addr  string
	file  string
	up    string
	cf    *countingFactory
	st    *memory.Store
	done  chan error
	conns int
}

func startWSUnit(t *testing.T, upAddr string, maxConns int) *wsGateway {
	t.Helper()
	w := &wsGateway{file: filepath.Join(t.TempDir(), "gateway.yaml"), up: upAddr, cf: &countingFactory{}, conns: maxConns}
	w.write(t, "v0")
	cfg, err := config.Load(w.file)
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	reg.Register(w.cf)
	w.st = memory.New()
	t.Cleanup(func() { _ = w.st.Close() })
	w.gw, err = New(cfg, Options{Registry: reg, Logger: zap.NewNop(), Store: w.st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	w.done = make(chan error, 1)
	go func() { w.done <- w.gw.Serve(ln, adminLn) }()
	return w
}

func (w *wsGateway) write(t *testing.T, tag string) {
	t.Helper()
	body := fmt.Sprintf(wsUnitConfig, w.conns, w.up, tag)
	if err := os.WriteFile(w.file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

const handshake = "GET /chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// dialHandshake sends a handshake (and extra bytes in the same write) and
// reads the answer's header.
func dialHandshake(t *testing.T, addr, extra string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, handshake+extra); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp
}

// TestTunnelKeepsItsConnectionPlace checks that a tunnel counts under
// server.max_connections while it is open, and frees its place when it ends.
func TestTunnelKeepsItsConnectionPlace(t *testing.T) {
	upAddr, stop := switchingUpstream(t)
	defer stop()
	w := startWSUnit(t, upAddr, 1)
	c, _, resp := dialHandshake(t, w.addr, "")
	if resp.StatusCode != 101 {
		t.Fatalf("first handshake: %d", resp.StatusCode)
	}
	refused, _, resp := dialHandshake(t, w.addr, "")
	body, _ := io.ReadAll(resp.Body)
	refused.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "too many connections") {
		t.Fatalf("handshake over max_connections with a tunnel open: %d %s", resp.StatusCode, body)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, resp := dialHandshake(t, w.addr, "")
		if resp.StatusCode == 101 {
			break
		}
		// The place frees once the gateway has seen the close.
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("handshake after the tunnel closed: %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.gw.Shutdown(0, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-w.done
}

// TestTunnelOutlivesReloadAndEndsAtShutdown opens a tunnel, reloads, checks
// the old generation retires (its plugins close) while the tunnel keeps
// working, then shuts down: the tunnel gets the shutdown timeout and is
// closed.
func TestTunnelOutlivesReloadAndEndsAtShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).workerFunc"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"))
	upAddr, stop := switchingUpstream(t)
	defer stop()
	w := startWSUnit(t, upAddr, 0)
	defer w.st.Close()
	gw, cf, done := w.gw, w.cf, w.done
	// Bytes right behind the handshake, in the same write, sit in the
	// server's read buffer: they must reach the upstream all the same.
	c, br, resp := dialHandshake(t, w.addr, "early")
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Connection") != "Upgrade" ||
		resp.Header.Get("Sec-Websocket-Accept") == "" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("handshake answer %d %v", resp.StatusCode, resp.Header)
	}
	echo := func(s string) {
		t.Helper()
		if s != "" {
			if _, err := io.WriteString(c, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect := func(s string) {
		t.Helper()
		b := make([]byte, len(s))
		if _, err := io.ReadFull(br, b); err != nil || string(b) != s {
			t.Fatalf("read %q, %v; want %q", b, err, s)
		}
	}
	expect("early")

	w.write(t, "v1")
	if _, err := gw.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cf.closed.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the old generation was not retired while a tunnel it opened is open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	echo("after reload")
	expect("after reload")
	if n := gw.tunnels.Len(); n != 1 {
		t.Fatalf("%d tunnels tracked, want 1", n)
	}

	start := time.Now()
	const timeout = 300 * time.Millisecond
	if err := gw.Shutdown(0, timeout); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < timeout {
		t.Fatalf("shutdown took %v: the tunnel did not get the shutdown timeout", took)
	}
	<-done
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after shutdown")
	}
	if n := gw.tunnels.Len(); n != 0 {
		t.Fatalf("%d tunnels tracked after shutdown", n)
	}
}
