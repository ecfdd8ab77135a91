package gateway

import (
	"bufio"
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
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(tag string) {
		body := strings.Replace(strings.Replace(wsUnitConfig, "%s", upAddr, 1), "%s", tag, 1)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("v0")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFactory{}
	reg := builtin.Registry()
	reg.Register(cf)
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: reg, Logger: zap.NewNop(), Store: st, Version: "test"})
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
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ln, adminLn) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Bytes right behind the handshake, in the same write, sit in the
	// server's read buffer: they must reach the upstream all the same.
	_, err = io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
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

	write("v1")
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
