package proxy

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// leakOptions ignores goroutines fasthttp runs on its own: the idle
// connection cleaner of a HostClient and the worker pool cleaner of a stopped
// server exit on their next tick, and the server date updater lives for the
// process.
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// backend is a fasthttp server on a loopback port.
type backend struct {
	url   string
	addr  string
	srv   *fasthttp.Server
	ln    net.Listener
	hits  atomic.Int64
	conns atomic.Int64
}

// startBackend serves h on 127.0.0.1:0 until the test ends.
// configure, when given, adjusts the server before it starts.
func startBackend(t testing.TB, h fasthttp.RequestHandler, configure ...func(*fasthttp.Server)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveBackend(t, ln, h, configure...)
}

func serveBackend(t testing.TB, ln net.Listener, h fasthttp.RequestHandler, configure ...func(*fasthttp.Server)) *backend {
	t.Helper()
	b := &backend{addr: ln.Addr().String(), ln: ln}
	b.url = "http://" + b.addr
	b.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			b.hits.Add(1)
			h(ctx)
		},
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				b.conns.Add(1)
			}
		},
		CloseOnShutdown: true,
		Logger:          quietLogger{},
	}
	for _, f := range configure {
		f(b.srv)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = b.srv.Shutdown()
		// Shutdown closes only a listener Serve has taken up: a test
		// that ends before the goroutine above runs would leave Serve
		// blocked in Accept. Closing it here ends Serve either way.
		_ = ln.Close()
		<-done
	})
	return b
}

// quietLogger drops the fasthttp server's error log; tests provoke errors.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// deadURL returns an http URL on a loopback port where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// newTestUpstream builds an upstream closed at the end of the test.
func newTestUpstream(t testing.TB, cfg Config) *Upstream {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test-" + strings.ReplaceAll(t.Name(), "/", "-")
	}
	u, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

func textHandler(body string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBodyString(body)
	}
}

// get sends one request through u and returns the body.
func get(t testing.TB, u *Upstream, method, path string) (string, error) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.SetHost("gateway.test")
	if method == fasthttp.MethodPost || method == fasthttp.MethodPut {
		req.SetBodyString("payload")
	}
	if err := u.Do(req, resp, 0); err != nil {
		return "", err
	}
	return string(resp.Body()), nil
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newReader(s string) *bufio.Reader {
	return bufio.NewReader(strings.NewReader(s))
}

// rawRequest parses a request the way the fasthttp server does.
func rawRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return req
}

func mustKind(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
