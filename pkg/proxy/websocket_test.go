package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestIsWebSocketUpgrade(t *testing.T) {
	tests := []struct {
		name          string
		giveMethod    string
		giveHeaders   []string // name, value pairs
		wantUpgrade   bool
		wantHandshake bool
	}{
		{name: "handshake", giveMethod: "GET", giveHeaders: []string{"Connection", "Upgrade", "Upgrade", "websocket"}, wantUpgrade: true, wantHandshake: true},
		{name: "any case", giveMethod: "GET", giveHeaders: []string{"Connection", "keep-alive, UPGRADE", "Upgrade", "WebSocket"}, wantUpgrade: true, wantHandshake: true},
		{name: "token in a list", giveMethod: "GET", giveHeaders: []string{"Connection", "Upgrade", "Upgrade", "h2c, websocket"}, wantUpgrade: true, wantHandshake: true},
		{name: "no connection upgrade", giveMethod: "GET", giveHeaders: []string{"Upgrade", "websocket"}, wantUpgrade: true},
		{name: "post", giveMethod: "POST", giveHeaders: []string{"Connection", "Upgrade", "Upgrade", "websocket"}, wantUpgrade: true},
		{name: "h2c", giveMethod: "GET", giveHeaders: []string{"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c"}},
		{name: "lookalike", giveMethod: "GET", giveHeaders: []string{"Connection", "Upgrade", "Upgrade", "websockets"}},
		{name: "none", giveMethod: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw strings.Builder
			raw.WriteString(tt.giveMethod + " /chat HTTP/1.1\r\nHost: x\r\n")
			for i := 0; i+1 < len(tt.giveHeaders); i += 2 {
				raw.WriteString(tt.giveHeaders[i] + ": " + tt.giveHeaders[i+1] + "\r\n")
			}
			raw.WriteString("\r\n")
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(raw.String()))); err != nil {
				t.Fatal(err)
			}
			if got := IsWebSocketUpgrade(&req.Header); got != tt.wantUpgrade {
				t.Errorf("IsWebSocketUpgrade = %v, want %v", got, tt.wantUpgrade)
			}
			if got := tt.wantUpgrade && IsWebSocketHandshake(&req.Header); got != tt.wantHandshake {
				t.Errorf("IsWebSocketHandshake = %v, want %v", got, tt.wantHandshake)
			}
		})
	}
}

func TestIsWebSocketUpgradeAllocs(t *testing.T) {
	var req fasthttp.Request
	raw := "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = IsWebSocketUpgrade(&req.Header) && IsWebSocketHandshake(&req.Header)
	}); n != 0 {
		t.Fatalf("%v allocs per run", n)
	}
}

// TestPrepareUpgradeHeaders checks what a handshake carries upstream:
// the upgrade pair put back after hygiene, the Sec-WebSocket-* headers
// kept, other hop-by-hop headers and identity headers gone.
func TestPrepareUpgradeHeaders(t *testing.T) {
	raw := "GET /chat HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, Upgrade, X-Hop\r\nUpgrade: WebSocket\r\n" +
		"X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-User-ID: forged\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	PrepareRequest(&req, net.IPv4(192, 0, 2, 1), false, nil, nil, nil)
	PrepareUpgrade(&req)
	want := map[string]string{
		"Connection":               "Upgrade",
		"Upgrade":                  "websocket",
		"Sec-Websocket-Key":        "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-Websocket-Version":    "13",
		"Sec-Websocket-Protocol":   "chat",
		"Sec-Websocket-Extensions": "permessage-deflate",
		"X-Forwarded-For":          "192.0.2.1",
		"X-Hop":                    "",
		"Keep-Alive":               "",
		"X-User-Id":                "",
	}
	for name, v := range want {
		if got := string(req.Header.Peek(name)); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

// rawUpstream accepts one connection at a time and runs h on it.
func rawUpstream(t *testing.T, h func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if _, err := http.ReadRequest(br); err != nil {
				c.Close()
				continue
			}
			h(c, br)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}

func handshakeRequest() *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.Header.SetMethod("GET")
	req.SetRequestURI("/chat")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	PrepareUpgrade(req)
	return req
}

func TestUpgradeRefusedIsAResponse(t *testing.T) {
	url := rawUpstream(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope")
		c.Close()
	})
	u := newTestUpstream(t, Config{Targets: []string{url}})
	req := handshakeRequest()
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	up, err := u.Upgrade(req, &resp, time.Second)
	if err != nil || up != nil {
		t.Fatalf("Upgrade = %v, %v; want a plain response", up, err)
	}
	if resp.StatusCode() != 403 || string(resp.Body()) != "nope" {
		t.Fatalf("response %d %q", resp.StatusCode(), resp.Body())
	}
}

func TestUpgradeOtherProtocolIsBadGateway(t *testing.T) {
	url := rawUpstream(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		c.Close()
	})
	u := newTestUpstream(t, Config{Targets: []string{url}})
	req := handshakeRequest()
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	_, err := u.Upgrade(req, &resp, time.Second)
	if !errors.Is(err, ErrBadGateway) {
		t.Fatalf("err = %v, want ErrBadGateway", err)
	}
}

func TestUpgradeDeadTargetRetried(t *testing.T) {
	live := rawUpstream(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		c.Close()
	})
	u := newTestUpstream(t, Config{Targets: []string{deadURL(t), live}, Retries: 1})
	for range 2 { // round robin: one of the two starts at the dead target
		req := handshakeRequest()
		var resp fasthttp.Response
		up, err := u.Upgrade(req, &resp, time.Second)
		fasthttp.ReleaseRequest(req)
		if err != nil || up == nil {
			t.Fatalf("Upgrade = %v, %v", up, err)
		}
		_ = up.Close()
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// startTunnel connects a client end and an upstream end through a tunnel
// and returns them with Run's result channel.
func startTunnel(t *testing.T, idle time.Duration, early []byte) (client, upstream net.Conn, tn *Tunnel, done chan error) {
	t.Helper()
	client, gwClient := tcpPair(t)
	gwUp, upstream := tcpPair(t)
	tn, err := NewTunnel(gwClient, &Upgraded{conn: gwUp, early: early}, idle)
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- tn.Run() }()
	return client, upstream, tn, done
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

func waitRun(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel still running")
		return nil
	}
}

func TestTunnelCopiesBothWaysAndHalfCloses(t *testing.T) {
	client, upstream, tn, done := startTunnel(t, time.Minute, []byte("early"))
	if got := readN(t, client, 5); string(got) != "early" {
		t.Fatalf("early upstream bytes %q", got)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, many buffers
	go func() { _, _ = client.Write(big) }()
	if got := readN(t, upstream, len(big)); !bytes.Equal(got, big) {
		t.Fatal("client to upstream bytes differ")
	}
	// The client ends its side: the upstream reads EOF, and may still answer.
	_ = client.(*net.TCPConn).CloseWrite()
	_ = upstream.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := upstream.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("upstream read after the client's half-close: %d, %v", n, err)
	}
	if _, err := upstream.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, client, 10); string(got) != "last words" {
		t.Fatalf("upstream to client after half-close %q", got)
	}
	upstream.Close()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("Run = %v, want nil for an orderly close", err)
	}
	in, out := tn.Bytes()
	if in != int64(len(big)) || out != 15 {
		t.Fatalf("bytes in %d, out %d", in, out)
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	client, upstream, _, done := startTunnel(t, idle, nil)
	// Traffic one way keeps the tunnel open for both.
	for range 6 {
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		readN(t, upstream, 1)
		time.Sleep(idle / 3)
	}
	select {
	case err := <-done:
		t.Fatalf("tunnel ended while busy: %v", err)
	default:
	}
	// Then silence: the tunnel ends and both connections close.
	if err := waitRun(t, done); !errors.Is(err, ErrTunnelIdle) {
		t.Fatalf("Run = %v, want ErrTunnelIdle", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("client connection still open: %v", err)
	}
}

func TestTunnelClose(t *testing.T) {
	client, _, tn, done := startTunnel(t, time.Minute, nil)
	tn.Close()
	if err := waitRun(t, done); !errors.Is(err, ErrTunnelClosed) {
		t.Fatalf("Run = %v, want ErrTunnelClosed", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("client connection still open: %v", err)
	}
}

func TestTunnelUpstreamResetEndsBoth(t *testing.T) {
	client, upstream, _, done := startTunnel(t, time.Minute, nil)
	_ = upstream.(*net.TCPConn).SetLinger(0)
	upstream.Close() // RST
	err := waitRun(t, done)
	_ = client.SetReadDeadline(time.Now().Add(time.Second))
	if _, rerr := client.Read(make([]byte, 1)); rerr == nil || isTimeout(rerr) {
		t.Fatalf("client connection still open after the upstream reset (Run = %v)", err)
	}
}

func TestFrameTracker(t *testing.T) {
	long := append([]byte{0x82, 126, 0x01, 0x00}, bytes.Repeat([]byte{'x'}, 256)...)
	masked := []byte{0x81, 0x80 | 3, 1, 2, 3, 4, 'a', 'b', 'c'}
	huge := []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0} // 65536-byte payload announced
	tests := []struct {
		name         string
		give         [][]byte // fed in this order
		wantBoundary bool
		wantClose    bool
	}{
		{name: "nothing", wantBoundary: true},
		{name: "one frame", give: [][]byte{{0x81, 2, 'h', 'i'}}, wantBoundary: true},
		{name: "header split", give: [][]byte{{0x81}, {2, 'h'}, {'i'}}, wantBoundary: true},
		{name: "mid payload", give: [][]byte{{0x82, 5, 'a', 'b'}}},
		{name: "mid header", give: [][]byte{{0x82, 126, 0x01}}},
		{name: "16-bit length", give: [][]byte{long[:100], long[100:]}, wantBoundary: true},
		{name: "16-bit length, short", give: [][]byte{long[:len(long)-1]}},
		{name: "masked", give: [][]byte{masked}, wantBoundary: true},
		{name: "64-bit length", give: [][]byte{huge, make([]byte, 65535)}},
		{name: "64-bit length, whole", give: [][]byte{huge, make([]byte, 65536)}, wantBoundary: true},
		{name: "empty ping then close", give: [][]byte{{0x89, 0}, {0x88, 2, 0x03, 0xe8}}, wantBoundary: true, wantClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frameTracker
			for _, p := range tt.give {
				f.feed(p)
			}
			if f.atBoundary() != tt.wantBoundary || f.sawClose != tt.wantClose {
				t.Fatalf("atBoundary %v, sawClose %v; want %v, %v", f.atBoundary(), f.sawClose, tt.wantBoundary, tt.wantClose)
			}
		})
	}
}

func TestTunnelShutdownSaysGoingAway(t *testing.T) {
	tests := []struct {
		name      string
		give      []byte // what the upstream sent before the shutdown
		wantClose bool
	}{
		{name: "between frames", give: []byte{0x81, 2, 'h', 'i'}, wantClose: true},
		{name: "mid frame", give: []byte{0x82, 5, 'a', 'b'}},
		{name: "after the upstream's close", give: []byte{0x88, 2, 0x03, 0xe8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, upstream, tn, done := startTunnel(t, time.Minute, nil)
			if _, err := upstream.Write(tt.give); err != nil {
				t.Fatal(err)
			}
			readN(t, client, len(tt.give))
			tn.Shutdown()
			_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
			rest, err := io.ReadAll(client)
			if err != nil {
				t.Fatalf("read after shutdown: %v", err)
			}
			if tt.wantClose != bytes.Equal(rest, closeGoingAway) || (!tt.wantClose && len(rest) != 0) {
				t.Fatalf("client got % x after shutdown", rest)
			}
			if tt.wantClose {
				// The client answers with its own close frame; then the
				// tunnel ends.
				_, _ = client.Write([]byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe9 ^ 2})
			}
			if err := waitRun(t, done); !errors.Is(err, ErrTunnelClosed) {
				t.Fatalf("Run = %v, want ErrTunnelClosed", err)
			}
		})
	}
}
