package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startGateway serves a minimal gateway in front of u: header hygiene, Do,
// error mapping, response cleaning.
func startGateway(t testing.TB, u *Upstream, tp *TrustedProxies, ids *IdentityHeaders) *backend {
	t.Helper()
	return startBackend(t, func(ctx *fasthttp.RequestCtx) {
		var scratch [64]byte
		ip := PrepareRequest(&ctx.Request, ctx.RemoteIP(), ctx.IsTLS(), tp, ids, scratch[:0])
		if err := u.Do(&ctx.Request, &ctx.Response, 0); err != nil {
			status, code := Classify(err)
			ctx.Response.Reset()
			ctx.SetStatusCode(status)
			ctx.SetBodyString(code)
			return
		}
		CleanResponse(&ctx.Response)
		ctx.Response.Header.Set("X-Client-Ip", string(ip))
	})
}

// clientConn is a raw keep-alive client connection.
type clientConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialClient(t testing.TB, addr string) *clientConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &clientConn{t: t, c: c, br: bufio.NewReader(c)}
}

// roundTrip writes raw and reads one response; stream leaves the body unread.
func (cc *clientConn) roundTrip(raw string, stream bool) *fasthttp.Response {
	cc.t.Helper()
	if err := cc.c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		cc.t.Fatal(err)
	}
	if _, err := io.WriteString(cc.c, raw); err != nil {
		cc.t.Fatal(err)
	}
	resp := &fasthttp.Response{StreamBody: stream}
	if err := resp.Read(cc.br); err != nil {
		cc.t.Fatalf("read response: %v", err)
	}
	return resp
}

func TestProxyEndToEndFraming(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/echo":
			fmt.Fprintf(ctx, "te=%q cl=%d conn=%q xhop=%q body=%q",
				ctx.Request.Header.Peek("Transfer-Encoding"), ctx.Request.Header.ContentLength(),
				ctx.Request.Header.Peek("Connection"), ctx.Request.Header.Peek("X-Hop"), ctx.PostBody())
		case "/close":
			ctx.Response.Header.Set("Connection", "close, X-Secret")
			ctx.Response.Header.Set("X-Secret", "internal")
			ctx.Response.Header.Set("Keep-Alive", "timeout=1")
			ctx.SetBodyString("closing")
		case "/chunked":
			ctx.SetBodyStream(strings.NewReader("streamed body"), -1)
		}
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	gw := startGateway(t, u, nil, nil)
	c := dialClient(t, gw.addr)

	resp := c.roundTrip("POST /echo HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Hop, Content-Length\r\nX-Hop: 1\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false)
	if got, want := string(resp.Body()), `te="" cl=11 conn="" xhop="" body="hello world"`; got != want {
		t.Errorf("upstream saw %s, want %s", got, want)
	}

	resp = c.roundTrip("GET /close HTTP/1.1\r\nHost: gw\r\n\r\n", false)
	if string(resp.Body()) != "closing" || resp.Header.Peek("X-Secret") != nil ||
		resp.Header.Peek("Keep-Alive") != nil || resp.ConnectionClose() {
		t.Errorf("response not cleaned:\n%s", resp.String())
	}

	resp = c.roundTrip("GET /chunked HTTP/1.1\r\nHost: gw\r\n\r\n", false)
	if string(resp.Body()) != "streamed body" {
		t.Errorf("chunked body = %q", resp.Body())
	}

	// The client connection survived the upstream's Connection: close.
	resp = c.roundTrip("GET /echo HTTP/1.1\r\nHost: gw\r\n\r\n", false)
	if resp.StatusCode() != 200 || gw.conns.Load() != 1 {
		t.Errorf("status %d over %d client connections, want 200 over 1", resp.StatusCode(), gw.conns.Load())
	}
	if got := string(resp.Header.Peek("X-Client-Ip")); got != "127.0.0.1" {
		t.Errorf("client IP = %q", got)
	}
}

func TestProxyErrorStatuses(t *testing.T) {
	u := newTestUpstream(t, Config{Targets: []string{deadURL(t)}})
	gw := startGateway(t, u, nil, nil)
	c := dialClient(t, gw.addr)
	resp := c.roundTrip("GET / HTTP/1.1\r\nHost: gw\r\n\r\n", false)
	if resp.StatusCode() != 502 || string(resp.Body()) != "bad_gateway" {
		t.Errorf("got %d %q, want 502 bad_gateway", resp.StatusCode(), resp.Body())
	}
}

// patternReader yields n bytes of a fixed pattern without holding them.
type patternReader struct {
	n, off int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.n-r.off)]
	for i := range p {
		p[i] = byte('a' + (r.off+i)%26)
	}
	r.off += len(p)
	return len(p), nil
}

func patternCRC(n int) uint32 {
	h := crc32.NewIEEE()
	_, _ = io.Copy(h, &patternReader{n: n})
	return h.Sum32()
}

func TestProxyStreamsLargeBody(t *testing.T) {
	const size = 20 << 20
	want := patternCRC(size)
	tests := []struct {
		name     string
		giveSize int // SetBodyStream size; -1 makes the upstream chunk
	}{
		{name: "content-length", giveSize: size},
		{name: "chunked", giveSize: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
				if string(ctx.Path()) == "/big" {
					ctx.SetBodyStream(&patternReader{n: size}, tt.giveSize)
					return
				}
				ctx.SetBodyString("small")
			})
			u := newTestUpstream(t, Config{Targets: []string{b.url}})
			gw := startGateway(t, u, nil, nil)
			c := dialClient(t, gw.addr)
			c.roundTrip("GET /warm HTTP/1.1\r\nHost: gw\r\n\r\n", false)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			resp := c.roundTrip("GET /big HTTP/1.1\r\nHost: gw\r\n\r\n", true)
			h := crc32.NewIEEE()
			buf := make([]byte, 32<<10)
			n, err := io.CopyBuffer(h, resp.BodyStream(), buf)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.CloseBodyStream()
			runtime.ReadMemStats(&after)

			if n != size || h.Sum32() != want {
				t.Fatalf("received %d bytes crc %x, want %d bytes crc %x", n, h.Sum32(), size, want)
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d KiB while proxying %d MiB", allocated>>10, size>>20)
			if allocated > 4<<20 {
				t.Errorf("allocated %d bytes while proxying %d: the body was buffered", allocated, size)
			}
			// The upstream connection went back to the pool once streamed.
			resp = c.roundTrip("GET /again HTTP/1.1\r\nHost: gw\r\n\r\n", false)
			if string(resp.Body()) != "small" || b.conns.Load() != 1 {
				t.Errorf("body %q over %d upstream connections, want small over 1", resp.Body(), b.conns.Load())
			}
		})
	}
}

func TestSmallBodiesAreBuffered(t *testing.T) {
	tests := []struct {
		name        string
		giveHandler fasthttp.RequestHandler
		wantBody    string
	}{
		{name: "content-length", giveHandler: textHandler("fixed"), wantBody: "fixed"},
		{
			name: "chunked",
			giveHandler: func(ctx *fasthttp.RequestCtx) {
				ctx.SetBodyStream(strings.NewReader(strings.Repeat("c", 40<<10)), -1)
			},
			wantBody: strings.Repeat("c", 40<<10),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startBackend(t, tt.giveHandler)
			u := newTestUpstream(t, Config{Targets: []string{b.url}})
			var req fasthttp.Request
			var resp fasthttp.Response
			req.SetRequestURI("/")
			if err := u.Do(&req, &resp, 0); err != nil {
				t.Fatal(err)
			}
			if resp.IsBodyStream() {
				t.Fatal("small body was streamed")
			}
			if string(resp.Body()) != tt.wantBody || resp.Header.ContentLength() != len(tt.wantBody) {
				t.Fatalf("body len %d, Content-Length %d", len(resp.Body()), resp.Header.ContentLength())
			}
			if resp.Header.Peek("Transfer-Encoding") != nil {
				t.Error("Transfer-Encoding left on a buffered body")
			}
			hc := u.targets[0].hc
			if hc.ConnsCount() != 1 || hc.IdleConnsCount() != 1 {
				t.Errorf("conns %d idle %d, want the connection back in the pool", hc.ConnsCount(), hc.IdleConnsCount())
			}
		})
	}
}

func TestStreamedBodyOverLimit(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStream(&patternReader{n: 200 << 10}, -1)
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}, MaxResponseBodySize: 100 << 10})
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("/")
	if err := u.Do(&req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	if !resp.IsBodyStream() {
		t.Fatal("body of unknown length beyond the buffer was not streamed")
	}
	n, err := io.Copy(io.Discard, resp.BodyStream())
	if !errors.Is(err, fasthttp.ErrBodyTooLarge) || n != 100<<10 {
		t.Fatalf("read %d bytes, err %v; want %d and ErrBodyTooLarge", n, err, 100<<10)
	}
	if err := resp.CloseBodyStream(); err != nil {
		t.Fatal(err)
	}
	if got := u.targets[0].hc.ConnsCount(); got != 0 {
		t.Errorf("conns = %d, want the half-read connection closed", got)
	}
}

func TestAbandonedStreamClosesConnection(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStream(&patternReader{n: 1 << 20}, 1<<20)
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("/")
	if err := u.Do(&req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	if !resp.IsBodyStream() {
		t.Fatal("large body not streamed")
	}
	// Reset releases the stream, as the gateway does when it replaces a
	// response.
	resp.Reset()
	if got := u.targets[0].hc.ConnsCount(); got != 0 {
		t.Errorf("conns = %d, want the unread connection closed", got)
	}
	if body, err := get(t, u, fasthttp.MethodGet, "/"); err != nil || len(body) != 1<<20 {
		t.Fatalf("next request: len %d err %v", len(body), err)
	}
}

func TestResponsesWithoutBody(t *testing.T) {
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/204":
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		case "/304":
			ctx.SetStatusCode(fasthttp.StatusNotModified)
		default:
			ctx.SetBodyString(strings.Repeat("h", 1234))
		}
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	tests := []struct {
		giveMethod string
		givePath   string
		wantStatus int
		wantCL     int
	}{
		{giveMethod: fasthttp.MethodHead, givePath: "/", wantStatus: 200, wantCL: 1234},
		{giveMethod: fasthttp.MethodGet, givePath: "/204", wantStatus: 204, wantCL: 0},
		{giveMethod: fasthttp.MethodGet, givePath: "/304", wantStatus: 304, wantCL: 0},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod+tt.givePath, func(t *testing.T) {
			var req fasthttp.Request
			var resp fasthttp.Response
			req.Header.SetMethod(tt.giveMethod)
			req.SetRequestURI(tt.givePath)
			if err := u.Do(&req, &resp, 0); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode() != tt.wantStatus || len(resp.Body()) != 0 {
				t.Fatalf("status %d body %d bytes", resp.StatusCode(), len(resp.Body()))
			}
			if tt.wantCL > 0 && resp.Header.ContentLength() != tt.wantCL {
				t.Errorf("Content-Length = %d, want %d", resp.Header.ContentLength(), tt.wantCL)
			}
		})
	}
	if b.conns.Load() != 1 {
		t.Errorf("upstream connections = %d, want 1 reused", b.conns.Load())
	}
}

// rawServer accepts connections and hands each to serve with its index.
func rawServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader, index int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c), i)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

func readRequest(br *bufio.Reader) bool {
	var req fasthttp.Request
	return req.Read(br) == nil
}

func TestBodyUntilClose(t *testing.T) {
	url := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
		if readRequest(br) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
		}
	})
	u := newTestUpstream(t, Config{Targets: []string{url}})
	var req fasthttp.Request
	var resp fasthttp.Response
	req.SetRequestURI("/")
	if err := u.Do(&req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	if string(resp.Body()) != "until close" || resp.Header.ContentLength() != len("until close") {
		t.Fatalf("body %q Content-Length %d", resp.Body(), resp.Header.ContentLength())
	}
	CleanResponse(&resp)
	if resp.ConnectionClose() {
		t.Error("client connection would be closed")
	}
	if got := u.targets[0].hc.ConnsCount(); got != 0 {
		t.Errorf("conns = %d, want the connection closed", got)
	}
}

func TestMalformedResponsesAreBadGateway(t *testing.T) {
	tests := []struct {
		name     string
		giveResp string
	}{
		{name: "garbage", giveResp: "not http at all\r\n\r\n"},
		{name: "bad chunk size", giveResp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{name: "truncated chunk", giveResp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"},
		{name: "truncated fixed", giveResp: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{name: "upgrade", giveResp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
				if readRequest(br) {
					_, _ = io.WriteString(c, tt.giveResp)
				}
			})
			u := newTestUpstream(t, Config{Targets: []string{url}})
			_, err := get(t, u, fasthttp.MethodGet, "/")
			mustKind(t, err, ErrBadGateway)
		})
	}
}

func TestChunkedDecoding(t *testing.T) {
	body := "0123456789abcdefghij"
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"a;ext=1\r\n0123456789\r\n" +
		"A \r\nabcdefghij\r\n" +
		"0\r\nX-Trailer: ignored\r\n\r\n"
	url := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
		for readRequest(br) {
			_, _ = io.WriteString(c, resp)
		}
	})
	u := newTestUpstream(t, Config{Targets: []string{url}})
	for range 2 {
		got, err := get(t, u, fasthttp.MethodGet, "/")
		if err != nil || got != body {
			t.Fatalf("body %q err %v", got, err)
		}
	}
	if got := u.targets[0].hc.ConnsCount(); got != 1 {
		t.Errorf("conns = %d, want 1 reused after the trailer", got)
	}
}

func TestReplayOnReusedConnectionClosedWithoutResponse(t *testing.T) {
	tests := []struct {
		giveMethod string
		wantErr    error
	}{
		{giveMethod: fasthttp.MethodGet},
		{giveMethod: fasthttp.MethodPost, wantErr: ErrBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod, func(t *testing.T) {
			// The first connection answers once, then closes on the next
			// request without answering, as an upstream dropping an idle
			// connection does.
			var served atomic.Int64
			url := rawServer(t, func(c net.Conn, br *bufio.Reader, index int) {
				for n := 0; readRequest(br); n++ {
					if index == 0 && n == 1 {
						return
					}
					served.Add(1)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			u := newTestUpstream(t, Config{Targets: []string{url}})
			if _, err := get(t, u, tt.giveMethod, "/"); err != nil {
				t.Fatal(err)
			}
			_, err := get(t, u, tt.giveMethod, "/")
			if tt.wantErr != nil {
				mustKind(t, err, tt.wantErr)
				if got := served.Load(); got != 1 {
					t.Errorf("served %d requests, want 1", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("idempotent request not replayed: %v", err)
			}
			if got := served.Load(); got != 2 {
				t.Errorf("served %d requests, want 2", got)
			}
		})
	}
}

func TestIdleConnectionProbe(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the idle probe threshold")
	}
	tests := []struct {
		name        string
		giveIdle    time.Duration // upstream idle timeout, 0 for none
		giveTimeout time.Duration
		wantConns   int64
	}{
		// The pooled connection was closed by the upstream; a POST cannot
		// be replayed, so it must not be sent on it.
		{name: "closed by upstream", giveIdle: 50 * time.Millisecond, wantConns: 2},
		// A live connection whose previous deadline has passed is reused.
		{name: "alive after its deadline", giveTimeout: 200 * time.Millisecond, wantConns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startBackend(t, textHandler("ok"), func(s *fasthttp.Server) { s.IdleTimeout = tt.giveIdle })
			u := newTestUpstream(t, Config{Targets: []string{b.url}, Timeout: tt.giveTimeout})
			if _, err := get(t, u, fasthttp.MethodPost, "/"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(probeIdle + 100*time.Millisecond)
			if body, err := get(t, u, fasthttp.MethodPost, "/"); err != nil || body != "ok" {
				t.Fatalf("body %q err %v", body, err)
			}
			if got := b.conns.Load(); got != tt.wantConns {
				t.Errorf("upstream connections = %d, want %d", got, tt.wantConns)
			}
		})
	}
}
