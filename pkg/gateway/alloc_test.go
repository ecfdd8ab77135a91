//go:build !race

package gateway

import (
	"bufio"
	"bytes"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHandleZeroAlloc asserts the steady-state request path (routing,
// header hygiene, the full plugin chain on the memory store, the upstream
// exchange, metrics) does not allocate.
func TestHandleZeroAlloc(t *testing.T) {
	gw, tok := benchGateway(t)
	logged, _ := benchGateway(t)
	withAccessLog(logged)
	// Tracing on, nothing sampled: requests that are not sampled (with or
	// without a traceparent) allocate nothing either.
	unsampled, tok2 := benchGatewayTracing(t, "0")
	withAccessLog(unsampled)
	withQuery, _ := benchGateway(t)
	withAccessLog(withQuery)
	withQuery.cur.Load().accessQuery = true
	tests := []struct {
		gw    *Gateway
		name  string
		path  string
		authz []byte
		// hdrName and hdrValue are one more request header.
		hdrName, hdrValue []byte
		// traceparent is sent with the request when set.
		traceparent []byte
	}{
		{name: "passthrough", path: "/pass/x"},
		{name: "full chain", path: "/chain/x", authz: []byte("Bearer " + tok)},
		{name: "not found", path: "/nothing"},
		{name: "access log on", gw: logged, path: "/pass/x"},
		{name: "parameters and rewrite", path: "/items/42/parts/7?q=1"},
		{name: "header condition and rewrite", path: "/items/42/parts/7", hdrName: []byte("X-Canary"), hdrValue: []byte("1")},
		{name: "parameter route 404", path: "/items/42/parts/7/x"},
		{name: "access log with query", gw: withQuery, path: "/pass/x?token=abc&page=2"},
		{name: "tracing on, not sampled", gw: unsampled, path: "/chain/x", authz: []byte("Bearer " + tok2)},
		{name: "tracing on, unsampled parent", gw: unsampled, path: "/chain/x", authz: []byte("Bearer " + tok2), traceparent: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")},
		{name: "tracing off, client traceparent", path: "/chain/x", authz: []byte("Bearer " + tok), traceparent: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gw
			if tt.gw != nil {
				gw = tt.gw
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			serve := func() {
				if tt.traceparent == nil {
					serveOnceHeader(gw, &ctx, tt.path, tt.authz, tt.hdrName, tt.hdrValue)
					return
				}
				serveOnceHeader(gw, &ctx, tt.path, tt.authz, hdrTraceparent, tt.traceparent)
			}
			for i := 0; i < 10; i++ {
				serve()
			}
			if n := testing.AllocsPerRun(200, serve); n != 0 {
				t.Fatalf("%v allocs per request", n)
			}
		})
	}
}

// TestHandleStreamedBodyZeroAlloc covers request bodies as the server hands
// them over when it streams bodies: one read whole (under the threshold),
// one streamed with its length, one chunked and streamed past the
// threshold.
func TestHandleStreamedBodyZeroAlloc(t *testing.T) {
	gw, _ := benchGateway(t)
	if !gw.streamBodies {
		t.Fatal("the default configuration does not stream request bodies")
	}
	tests := []struct {
		name     string
		giveSize int
		giveCL   int // -1: chunked
	}{
		{name: "small body read whole", giveSize: 2 << 10, giveCL: 2 << 10},
		{name: "large body streamed", giveSize: 128 << 10, giveCL: 128 << 10},
		{name: "chunked body streamed", giveSize: 128 << 10, giveCL: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("z"), tt.giveSize)
			// The header is parsed from the wire, as the server does.
			head := "POST /pass/x HTTP/1.1\r\nHost: gw.example\r\nTransfer-Encoding: chunked\r\n\r\n"
			if tt.giveCL >= 0 {
				head = "POST /pass/x HTTP/1.1\r\nHost: gw.example\r\nContent-Length: " + strconv.Itoa(tt.giveCL) + "\r\n\r\n"
			}
			var (
				ctx    fasthttp.RequestCtx
				rd, hr bytes.Reader
				raw    = []byte(head)
			)
			br := bufio.NewReader(&hr)
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			serve := func() {
				ctx.Request.Reset()
				hr.Reset(raw)
				br.Reset(&hr)
				if err := ctx.Request.Header.Read(br); err != nil {
					t.Fatal(err)
				}
				rd.Reset(body)
				ctx.Request.SetBodyStream(&rd, tt.giveCL)
				gw.Handle(&ctx)
				if s := ctx.Response.StatusCode(); s != 200 {
					t.Fatalf("status %d: %s", s, ctx.Response.Body())
				}
				ctx.Response.Reset()
				ctx.Request.ResetUserValues()
			}
			for i := 0; i < 10; i++ {
				serve()
			}
			if n := testing.AllocsPerRun(200, serve); n != 0 {
				t.Fatalf("%v allocs per request", n)
			}
		})
	}
}

// TestTrafficPluginsZeroAlloc runs ip-filter, headers and compress through
// the handler, upstream exchange included: a compressed JSON answer does
// not allocate in the steady state.
func TestTrafficPluginsZeroAlloc(t *testing.T) {
	gw, _ := trafficGateway(t)
	for _, enc := range []string{"gzip", "br"} {
		t.Run(enc, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Init(&fasthttp.Request{}, benchAddr, nil)
			e := []byte(enc)
			for i := 0; i < 10; i++ {
				serveTraffic(t, gw, &ctx, e)
			}
			if n := testing.AllocsPerRun(200, func() { serveTraffic(t, gw, &ctx, e) }); n != 0 {
				t.Fatalf("%v allocs per request", n)
			}
		})
	}
}
