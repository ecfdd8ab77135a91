package proxy

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/gatewayd/gatewayd/internal/testpki"
)

const benchRequest = "GET /v1/users/42?expand=roles HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: bench/1.0\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f\r\n" +
	"X-Forwarded-For: 198.51.100.9\r\n" +
	"X-User-Id: 7\r\n" +
	"Cookie: session=abc\r\n" +
	"\r\n"

func benchPrepare(tb testing.TB) (tmpl *fasthttp.Request, tp *TrustedProxies, ids *IdentityHeaders) {
	tb.Helper()
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		tb.Fatal(err)
	}
	return rawRequest(tb, benchRequest), tp, NewIdentityHeaders([]string{"X-Auth-Subject", "X-Tenant"})
}

func BenchmarkPrepareRequest(b *testing.B) {
	tmpl, tp, ids := benchPrepare(b)
	peers := []struct {
		name string
		ip   net.IP
	}{
		{name: "untrusted", ip: net.ParseIP("203.0.113.7")},
		{name: "trusted", ip: net.ParseIP("10.0.0.2")},
	}
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			var req fasthttp.Request
			dst := make([]byte, 0, 128)
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&req)
				dst = PrepareRequest(&req, p.ip, false, tp, ids, dst[:0])
			}
		})
	}
	// The cost of restoring the request each iteration, to subtract.
	b.Run("copy only", func(b *testing.B) {
		var req fasthttp.Request
		b.ReportAllocs()
		for b.Loop() {
			tmpl.CopyTo(&req)
		}
	})
}

func BenchmarkCleanResponse(b *testing.B) {
	var tmpl fasthttp.Response
	if err := tmpl.Read(newReader("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive, X-Internal\r\n" +
		"X-Internal: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n{}")); err != nil {
		b.Fatal(err)
	}
	var resp fasthttp.Response
	b.ReportAllocs()
	for b.Loop() {
		tmpl.CopyTo(&resp)
		CleanResponse(&resp)
	}
}

// BenchmarkUpstreamDo measures one proxied exchange over loopback, next to
// a plain HostClient.Do against the same server as the baseline.
func BenchmarkUpstreamDo(b *testing.B) {
	body := []byte(`{"id":42,"name":"alice","role":"admin"}`)
	srv := startBackend(b, func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	})
	u := newTestUpstream(b, Config{Targets: []string{srv.url}})
	tmpl := rawRequest(b, benchRequest)
	hc := &fasthttp.HostClient{
		Addr:                     srv.addr,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		Dial:                     func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) },
	}
	b.Cleanup(hc.CloseIdleConnections)

	b.Run("upstream", func(b *testing.B) {
		var req fasthttp.Request
		var resp fasthttp.Response
		b.ReportAllocs()
		for b.Loop() {
			tmpl.CopyTo(&req)
			if err := u.Do(&req, &resp, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("upstream parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var req fasthttp.Request
			var resp fasthttp.Response
			for pb.Next() {
				tmpl.CopyTo(&req)
				if err := u.Do(&req, &resp, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("hostclient baseline", func(b *testing.B) {
		var req fasthttp.Request
		var resp fasthttp.Response
		b.ReportAllocs()
		for b.Loop() {
			tmpl.CopyTo(&req)
			if err := hc.DoTimeout(&req, &resp, DefaultTimeout); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUpstreamDoTLS measures one proxied exchange with an https target
// over a kept-alive connection (TLS 1.3), and a new connection per request
// whose handshake resumes a session.
func BenchmarkUpstreamDoTLS(b *testing.B) {
	body := []byte(`{"id":42,"name":"alice","role":"admin"}`)
	ca := testpki.NewCA(b, "internal CA")
	srv := startTLSBackend(b, serverConfig(ca.Server(b, []string{"127.0.0.1"})), func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	})
	u := newTestUpstream(b, Config{Targets: []string{srv.url}, TLS: &TLS{CA: ca.PEM}})
	tmpl := rawRequest(b, benchRequest)
	for _, keepAlive := range []bool{true, false} {
		name := "keep-alive"
		if !keepAlive {
			name = "resumed handshake per request"
		}
		b.Run(name, func(b *testing.B) {
			var req fasthttp.Request
			var resp fasthttp.Response
			b.ReportAllocs()
			for b.Loop() {
				tmpl.CopyTo(&req)
				req.SetConnectionClose()
				if keepAlive {
					req.Header.ResetConnectionClose()
				}
				if err := u.Do(&req, &resp, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWeightedPick measures target selection alone: a first attempt
// and a retry excluding it, over eight weighted targets.
func BenchmarkWeightedPick(b *testing.B) {
	weights := []int{40, 20, 10, 10, 8, 6, 4, 2}
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		b.Run(balance, func(b *testing.B) {
			u := weightedUpstream(b, balance, weights...)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					first := u.next(0)
					_ = u.next(first.bit)
				}
			})
		})
	}
}

// BenchmarkRetryBudget measures the budget's per-request bookkeeping and
// a retry check.
func BenchmarkRetryBudget(b *testing.B) {
	rb := newRetryBudget(RetryBudget{Ratio: 0.2, MinPerSecond: 10, Window: 10 * time.Second})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sec := second(time.Now())
			rb.request(sec)
			_ = rb.allow(sec)
		}
	})
}
