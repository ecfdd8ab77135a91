//go:build !race

package proxy

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatewayd/gatewayd/internal/testpki"
)

func TestPrepareRequestDoesNotAllocate(t *testing.T) {
	tmpl, tp, ids := benchPrepare(t)
	tests := []struct {
		name     string
		givePeer net.IP
	}{
		{name: "untrusted", givePeer: net.ParseIP("203.0.113.7")},
		{name: "trusted", givePeer: net.ParseIP("10.0.0.2")},
		{name: "trusted ipv6", givePeer: net.ParseIP("fd00::2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.Request
			dst := make([]byte, 0, 128)
			allocs := testing.AllocsPerRun(200, func() {
				tmpl.CopyTo(&req)
				dst = PrepareRequest(&req, tt.givePeer, true, tp, ids, dst[:0])
			})
			if allocs != 0 {
				t.Errorf("PrepareRequest allocates %.1f times per call", allocs)
			}
		})
	}
}

func TestDropUnderscoreHeadersDoesNotAllocate(t *testing.T) {
	tmpl := rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\nX_Api_Version: 1\r\nAccept: */*\r\nX_Other: 2\r\n\r\n")
	var req fasthttp.Request
	allocs := testing.AllocsPerRun(200, func() {
		tmpl.CopyTo(&req)
		DropUnderscoreHeaders(&req)
	})
	if allocs != 0 {
		t.Errorf("DropUnderscoreHeaders allocates %.1f times per call", allocs)
	}
}

func TestCleanResponseDoesNotAllocate(t *testing.T) {
	var tmpl, resp fasthttp.Response
	if err := tmpl.Read(newReader("HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: 1\r\n" +
		"Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok")); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		tmpl.CopyTo(&resp)
		CleanResponse(&resp)
	})
	if allocs != 0 {
		t.Errorf("CleanResponse allocates %.1f times per call", allocs)
	}
}

func TestUpstreamDoDoesNotAllocate(t *testing.T) {
	b := startBackend(t, textHandler(`{"ok":true}`))
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	tmpl := rawRequest(t, benchRequest)
	var req fasthttp.Request
	var resp fasthttp.Response
	do := func() {
		tmpl.CopyTo(&req)
		if err := u.Do(&req, &resp, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		do()
	}
	// The count covers the loopback server too; fasthttp serves without
	// allocating once warm, so any allocation here is the client side's.
	if allocs := testing.AllocsPerRun(200, do); allocs != 0 {
		t.Errorf("Upstream.Do allocates %.2f times per call", allocs)
	}
}

func TestUpstreamDoWithStatusRetryDoesNotAllocate(t *testing.T) {
	failing := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, "down"))
	live := startBackend(t, textHandler(`{"ok":true}`))
	u := newTestUpstream(t, Config{
		Targets: []string{failing.url, live.url}, Weights: []int{3, 1}, Retries: 1, RetryOn: []string{"503"},
		RetryBudget: &RetryBudget{Ratio: 1, Window: time.Second},
	})
	tmpl := rawRequest(t, benchRequest)
	var req fasthttp.Request
	var resp fasthttp.Response
	do := func() {
		tmpl.CopyTo(&req)
		if err := u.Do(&req, &resp, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		do()
	}
	before := u.retried.Get()
	if allocs := testing.AllocsPerRun(200, do); allocs != 0 {
		t.Errorf("Upstream.Do with a retried 503 allocates %.2f times per call", allocs)
	}
	if u.retried.Get() == before {
		t.Fatal("no retry was made")
	}
}

func TestUpstreamDoOverTLSAllocations(t *testing.T) {
	ca := testpki.NewCA(t, "internal CA")
	b := startTLSBackend(t, serverConfig(ca.Server(t, []string{"127.0.0.1"})), textHandler(`{"ok":true}`))
	u := newTestUpstream(t, Config{Targets: []string{b.url}, TLS: &TLS{CA: ca.PEM}})
	tmpl := rawRequest(t, benchRequest)
	var req fasthttp.Request
	var resp fasthttp.Response
	do := func() {
		tmpl.CopyTo(&req)
		if err := u.Do(&req, &resp, 0); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		do()
	}
	// On a kept-alive TLS connection the gateway's side adds nothing to
	// the plain exchange; crypto/tls itself allocates once per record read
	// (the reader it wraps the socket in escapes), here once on each end of
	// the loopback: the server reading the request, the client the response.
	const tlsRecordReads = 2
	if allocs := testing.AllocsPerRun(200, do); allocs > tlsRecordReads {
		t.Errorf("Upstream.Do over TLS allocates %.2f times per call, want at most %d", allocs, tlsRecordReads)
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestWeightedPickDoesNotAllocate(t *testing.T) {
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		for _, weights := range [][]int{{90, 10}, {1, 1, 1}} {
			u := weightedUpstream(t, balance, weights...)
			u.targets[0].ejectedUntil.Store(time.Now().Add(-time.Second).UnixNano())
			allocs := testing.AllocsPerRun(1000, func() {
				first := u.next(0)
				_ = u.next(first.bit)
			})
			if allocs != 0 {
				t.Errorf("%s %v: pick allocates %.1f times per call", balance, weights, allocs)
			}
		}
	}
}

func TestRetryBudgetDoesNotAllocate(t *testing.T) {
	b := newRetryBudget(RetryBudget{Ratio: 0.2, MinPerSecond: 10, Window: 10 * time.Second})
	allocs := testing.AllocsPerRun(1000, func() {
		sec := second(time.Now())
		b.request(sec)
		_ = b.allow(sec)
	})
	if allocs != 0 {
		t.Errorf("retry budget allocates %.1f times per call", allocs)
	}
}

// sizeSum is a SizeObserver adding up the sizes it is given.
type sizeSum struct{ n, calls int64 }

func (s *sizeSum) ObserveResponseSize(n int64) { s.n += n; s.calls++ }

func TestStreamedBodySizeObserverDoesNotAllocate(t *testing.T) {
	const size = 200 << 10
	b := startBackend(t, textHandler(strings.Repeat("b", size)))
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	tmpl := rawRequest(t, benchRequest)
	var (
		req  fasthttp.Request
		resp fasthttp.Response
		obs  sizeSum
		buf  = make([]byte, 32<<10)
	)
	do := func() {
		tmpl.CopyTo(&req)
		if err := u.Do(&req, &resp, 0); err != nil {
			t.Fatal(err)
		}
		if !ObserveBodySize(&resp, &obs) {
			t.Fatal("a 200 KiB answer is not a body stream of the upstream")
		}
		// What the server does with a body stream: copy it out, close it.
		r := resp.BodyStream()
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
		if err := resp.CloseBodyStream(); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		do()
	}
	if obs.n != 10*size || obs.calls != 10 {
		t.Fatalf("observed %d bytes in %d calls, want %d in 10", obs.n, obs.calls, 10*size)
	}
	if allocs := testing.AllocsPerRun(100, do); allocs != 0 {
		t.Errorf("a streamed body with a size observer allocates %.2f times per response", allocs)
	}
}
