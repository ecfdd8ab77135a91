package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// bigHeader is a response header line of about n bytes.
func bigHeader(n int) string {
	return "Set-Cookie: session=" + strings.Repeat("c", n) + "\r\n"
}

// TestResponseHeaderLargerThanReadBuffer: a response header block over
// the exchange's first read buffer is read whole from a larger one, with
// interim responses before it, a fixed, chunked or streamed body after it,
// and the connection is reused; one over maxResponseHeaderBytes is a bad
// gateway, as before.
func TestResponseHeaderLargerThanReadBuffer(t *testing.T) {
	large := strings.Repeat("x", bufferLimit+1)
	tests := []struct {
		name     string
		header   int // bytes of the Set-Cookie value
		interim  string
		body     string
		chunked  bool
		wantBody string
		wantErr  error
	}{
		{name: "fits", header: 100, body: "ok", wantBody: "ok"},
		{name: "over the first buffer", header: readBufferSize + 500, body: "ok", wantBody: "ok"},
		{name: "just under the cap", header: maxResponseHeaderBytes - 200, body: "ok", wantBody: "ok"},
		{name: "after 100 Continue", header: readBufferSize + 500, interim: "HTTP/1.1 100 Continue\r\n\r\n", body: "ok", wantBody: "ok"},
		{name: "chunked body", header: readBufferSize + 500, body: "0123456789", chunked: true, wantBody: "0123456789"},
		{name: "streamed body", header: readBufferSize + 500, body: large, wantBody: large},
		{name: "over the cap", header: maxResponseHeaderBytes + 100, body: "ok", wantErr: ErrBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := rawServer(t, func(c net.Conn, br *bufio.Reader, _ int) {
				for readRequest(br) {
					resp := "HTTP/1.1 200 OK\r\n" + bigHeader(tt.header)
					if tt.chunked {
						resp += "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(tt.body)), 16) + "\r\n" + tt.body + "\r\n0\r\n\r\n"
					} else {
						resp += "Content-Length: " + strconv.Itoa(len(tt.body)) + "\r\n\r\n" + tt.body
					}
					if _, err := io.WriteString(c, tt.interim+resp); err != nil {
						return
					}
				}
			})
			u := newTestUpstream(t, Config{Targets: []string{url}})
			for i := range 3 {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.SetRequestURI("/")
				req.Header.SetHost("gateway.test")
				err := u.Do(req, resp, 5*time.Second)
				if tt.wantErr != nil {
					mustKind(t, err, tt.wantErr)
					fasthttp.ReleaseRequest(req)
					fasthttp.ReleaseResponse(resp)
					return
				}
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body := resp.Body()
				if s := resp.BodyStream(); s != nil {
					b, err := io.ReadAll(s)
					if err != nil {
						t.Fatal(err)
					}
					body = b
				}
				if string(body) != tt.wantBody {
					t.Fatalf("request %d: body of %d bytes, want %d", i, len(body), len(tt.wantBody))
				}
				if got := len(resp.Header.PeekCookie("session")); got == 0 {
					t.Fatalf("request %d: Set-Cookie lost", i)
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
			if got := u.targets[0].hc.ConnsCount(); got != 1 {
				t.Errorf("upstream connections = %d, want 1 reused", got)
			}
		})
	}
}

// TestUpgradeResponseHeaderLargerThanReadBuffer: a 101 whose header block
// is over the first read buffer switches, and the upstream's first frame
// sent with it is kept.
func TestUpgradeResponseHeaderLargerThanReadBuffer(t *testing.T) {
	url := rawUpstream(t, func(c net.Conn, _ *bufio.Reader) {
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			bigHeader(readBufferSize+500)+"\r\nearly")
		time.Sleep(100 * time.Millisecond)
		c.Close()
	})
	u := newTestUpstream(t, Config{Targets: []string{url}})
	req := handshakeRequest()
	defer fasthttp.ReleaseRequest(req)
	var resp fasthttp.Response
	up, err := u.Upgrade(req, &resp, time.Second)
	if err != nil || up == nil {
		t.Fatalf("Upgrade = %v, %v", up, err)
	}
	defer up.Close()
	if string(up.early) != "early" {
		t.Fatalf("early bytes %q, want %q", up.early, "early")
	}
}

func TestSmallBuffer(t *testing.T) {
	if smallBuffer(nil) || smallBuffer(errors.New("x")) || smallBuffer(io.EOF) {
		t.Fatal("smallBuffer true for another error")
	}
	br := bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\n"+bigHeader(5000)+"\r\n"), 4096)
	var h fasthttp.ResponseHeader
	if err := h.Read(br); !smallBuffer(err) {
		t.Fatalf("header over the buffer: %v, want a small-buffer error", err)
	}
}
