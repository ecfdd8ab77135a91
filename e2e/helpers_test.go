package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/valyala/fasthttp"
)

// startEcho runs the echo upstream in-process on a loopback port.
func startEcho(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: echo.Handler(name)}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

var client = &http.Client{Timeout: 10 * time.Second}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func do(t *testing.T, method, url string, hdr map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// apiError is the JSON error body of SPEC §5.
type apiError struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
	RetryAfter *int   `json:"retry_after"`
}

func decodeError(t *testing.T, r response) apiError {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, body %s", ct, r.Body)
	}
	var e apiError
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.Body)
	}
	if e.Error == "" || e.Message == "" || e.RequestID == "" {
		t.Fatalf("incomplete error body: %s", r.Body)
	}
	return e
}

func decodeEcho(t *testing.T, r response) echo.Request {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var e echo.Request
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("echo body: %v: %s", err, r.Body)
	}
	return e
}

func header(e echo.Request, name string) string {
	v := e.Headers[http.CanonicalHeaderKey(name)]
	return strings.Join(v, ",")
}

// rawRequest writes raw bytes on a new connection and returns the first
// response's status line and headers, and whether the server closed the
// connection afterwards.
func rawRequest(t *testing.T, addr, raw string) (status string, hdr string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sb strings.Builder
	_ = resp.Header.Write(&sb)
	sb.Write(b)
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	return resp.Status, sb.String(), err == io.EOF || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
