// Package upstreamsrv is the benchmark upstream: a fasthttp server that
// answers every request with the same small JSON body, optionally after a
// fixed delay.
package upstreamsrv

import (
	"bytes"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Options configure the server.
type Options struct {
	// Size is the response body size in bytes (default 64).
	Size int
	// Latency delays every response.
	Latency time.Duration
}

// DefaultSize is the default body size.
const DefaultSize = 64

var contentType = []byte("application/json")

// Body returns a JSON document of exactly size bytes (at least 2): a
// padded object, or "{}" and spaces when size is too small for one.
func Body(size int) []byte {
	const head, tail = `{"ok":true,"pad":"`, `"}`
	size = max(size, 2)
	if size < len(head)+len(tail) {
		return append([]byte("{}"), bytes.Repeat([]byte(" "), size-2)...)
	}
	b := make([]byte, 0, size)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte("x"), size-len(head)-len(tail))...)
	return append(b, tail...)
}

// Handler returns the request handler.
func Handler(o Options) fasthttp.RequestHandler {
	size := o.Size
	if size <= 0 {
		size = DefaultSize
	}
	body := Body(size)
	delay := o.Latency
	return func(ctx *fasthttp.RequestCtx) {
		if delay > 0 {
			time.Sleep(delay)
		}
		ctx.Response.Header.SetContentTypeBytes(contentType)
		ctx.Response.SetBodyRaw(body)
	}
}

// Server returns a fasthttp server for o, tuned for many keep-alive
// connections and no per-request extras.
func Server(o Options) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               Handler(o),
		Name:                  "bench-upstream",
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		ReadTimeout:           60 * time.Second,
		IdleTimeout:           60 * time.Second,
		Concurrency:           64 << 10,
	}
}

// Serve serves o on ln until the server is shut down.
func Serve(ln net.Listener, o Options) error { return Server(o).Serve(ln) }
