package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/valyala/fasthttp"
)

// countingUpstream serves status with body on a loopback port and counts
// the requests it gets.
type countingUpstream struct {
	addr string
	hits atomic.Int64
}

func startCounting(t *testing.T, status int, body string) *countingUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &countingUpstream{addr: ln.Addr().String()}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		c.hits.Add(1)
		ctx.SetStatusCode(status)
		ctx.SetContentType("text/plain")
		ctx.SetBodyString(body)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return c
}

// trafficClient keeps enough idle connections for the parallel senders.
var trafficClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16},
}

// sendMany sends n requests over workers parallel connections and returns
// the count of each status.
func sendMany(t *testing.T, method, url string, n, workers int) map[int]int {
	t.Helper()
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequest(method, url, strings.NewReader("payload"))
				resp, err := trafficClient.Do(req)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if msg := failed.Load(); msg != nil {
		t.Fatalf("%s %s: %v", method, url, msg)
	}
	return counts
}

// retriesMetric reads gateway_upstream_retries_total{upstream=name}.
func retriesMetric(t *testing.T, gw *gatewaytest.Process, name string) int {
	t.Helper()
	r := do(t, "GET", gw.AdminURL("/metrics"), nil, "")
	m := regexp.MustCompile(`(?m)^gateway_upstream_retries_total\{upstream="` + regexp.QuoteMeta(name) + `"\} (\d+)$`).FindSubmatch(r.Body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func checkShare(t *testing.T, what string, got int64, want float64) {
	t.Helper()
	if math.Abs(float64(got)-want) > 0.02*want {
		t.Errorf("%s got %d requests, want %.0f ±2%%", what, got, want)
	}
}

const weightedConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: warn, access_log: false }
upstreams:
  api:
    targets:
      - { url: "http://%s", weight: %d }
      - { url: "http://%s", weight: %d }
    balance: %s
routes:
  - name: api
    match: { path_prefix: / }
    upstream: api
`

// TestTrafficWeightedTargets: requests over targets weighted 90/10 split
// 90/10 within 2 %; a reload to 50/50 takes effect on the next requests.
// round_robin gets 10 000 requests from parallel clients. least_conn
// balances requests in flight per unit of weight, so its request shares
// follow the weights exactly only while the targets are idle when picked
// (ties are broken by weight): it gets one client at a time.
func TestTrafficWeightedTargets(t *testing.T) {
	tests := []struct {
		balance     string
		giveN       int
		giveWorkers int
	}{
		{balance: "round_robin", giveN: 10000, giveWorkers: 4},
		{balance: "least_conn", giveN: 3000, giveWorkers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.balance, func(t *testing.T) {
			a := startCounting(t, 200, "a")
			b := startCounting(t, 200, "b")
			gw := gatewaytest.Start(t, fmt.Sprintf(weightedConfig, a.addr, 90, b.addr, 10, tt.balance))

			n := tt.giveN
			counts := sendMany(t, "GET", gw.URL("/x"), n, tt.giveWorkers)
			if counts[200] != n {
				t.Fatalf("statuses %v, want %d × 200", counts, n)
			}
			t.Logf("%d requests: weight 90 got %d, weight 10 got %d", n, a.hits.Load(), b.hits.Load())
			checkShare(t, "target weighted 90", a.hits.Load(), 0.9*float64(n))
			checkShare(t, "target weighted 10", b.hits.Load(), 0.1*float64(n))

			gw.WriteConfig(fmt.Sprintf(weightedConfig, a.addr, 1, b.addr, 1, tt.balance))
			if r := do(t, "POST", gw.AdminURL("/-/reload"), nil, ""); r.Status != 200 {
				t.Fatalf("reload: %d %s", r.Status, r.Body)
			}
			a0, b0 := a.hits.Load(), b.hits.Load()
			const m = 1000
			if counts := sendMany(t, "GET", gw.URL("/x"), m, tt.giveWorkers); counts[200] != m {
				t.Fatalf("after reload: statuses %v", counts)
			}
			checkShare(t, "after reload, target weighted 1", a.hits.Load()-a0, m/2)
			checkShare(t, "after reload, other target weighted 1", b.hits.Load()-b0, m/2)
		})
	}
}

const retryConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: warn, access_log: false }
upstreams:
  api:
    targets: ["http://%s", "http://%s"]
    retries: %d
    retry_on: [connect, 502, 503, 504]
    retry_budget: %s
routes:
  - name: api
    match: { path_prefix: / }
    upstream: api
`

// TestTrafficRetry503: a 503 from one target is retried on the other for
// GET (every client gets the healthy target's 200), and not for POST (the
// client gets the 503; the other target never sees that request).
func TestTrafficRetry503(t *testing.T) {
	failing := startCounting(t, 503, "overloaded")
	healthy := startCounting(t, 200, "ok")
	gw := gatewaytest.Start(t, fmt.Sprintf(retryConfig, failing.addr, healthy.addr, 1, "{ ratio: 1, min_per_second: 100 }"))

	const n = 200
	counts := sendMany(t, "GET", gw.URL("/x"), n, 2)
	if counts[200] != n {
		t.Fatalf("GET statuses %v, want %d × 200: a 503 must be retried on the healthy target", counts, n)
	}
	f, h := failing.hits.Load(), healthy.hits.Load()
	t.Logf("GET: %d requests, failing target %d, healthy target %d", n, f, h)
	if f == 0 || h != n {
		t.Fatalf("GET: failing target %d, healthy target %d requests; want some, and %d", f, h, n)
	}
	if got := retriesMetric(t, gw, "api"); got != int(f) {
		t.Fatalf("gateway_upstream_retries_total = %d, want %d (one per 503)", got, f)
	}

	counts = sendMany(t, "POST", gw.URL("/x"), n, 2)
	fPost, hPost := failing.hits.Load()-f, healthy.hits.Load()-h
	if fPost+hPost != n {
		t.Fatalf("POST: %d upstream requests for %d client requests: a POST must not be retried", fPost+hPost, n)
	}
	if counts[503] != int(fPost) || counts[200] != int(hPost) || fPost == 0 {
		t.Fatalf("POST statuses %v, failing target %d, healthy target %d", counts, fPost, hPost)
	}
	if got := retriesMetric(t, gw, "api"); got != int(f) {
		t.Fatalf("gateway_upstream_retries_total = %d after the POSTs, want %d", got, f)
	}
}

// TestTrafficRetryBudget: with every target failing and retries: 2, the
// budget (ratio 0.2, 1 per second over 60s) bounds the extra upstream
// attempts, where without it every request would make three.
func TestTrafficRetryBudget(t *testing.T) {
	a := startCounting(t, 503, "down")
	b := startCounting(t, 503, "down")
	gw := gatewaytest.Start(t, fmt.Sprintf(retryConfig, a.addr, b.addr, 2, "{ ratio: 0.2, min_per_second: 1, window: 60s }"))

	const n = 1000
	start := time.Now()
	counts := sendMany(t, "GET", gw.URL("/x"), n, 4)
	if counts[503] != n {
		t.Fatalf("statuses %v, want %d × 503", counts, n)
	}
	if time.Since(start) >= 60*time.Second {
		t.Skip("the requests took longer than the budget window")
	}
	extra := a.hits.Load() + b.hits.Load() - n
	budget := int64(0.2*n) + 60
	t.Logf("%d requests, %d upstream attempts: %d retries, budget %d (without it: %d)", n, n+extra, extra, budget, 2*n)
	if extra > budget {
		t.Fatalf("%d extra upstream attempts for %d requests, budget %d", extra, n, budget)
	}
	if extra < budget/2 {
		t.Fatalf("%d extra upstream attempts for %d requests: the budget of %d allows more retries", extra, n, budget)
	}
	if got := retriesMetric(t, gw, "api"); int64(got) != extra {
		t.Fatalf("gateway_upstream_retries_total = %d, want %d", got, extra)
	}
}

// startTruncating serves a 200 with a Content-Length of 1 MiB, sends the
// header and 128 KiB of the body, then closes: the response has started
// streaming to the client when the upstream fails.
func startTruncating(t *testing.T) (addr string, hits *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits = new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				// One request, answered with an eighth of the promised body,
				// then the connection is closed.
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				hits.Add(1)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n")
				_, _ = c.Write(make([]byte, 128<<10))
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().String(), hits
}

// TestTrafficNoRetryAfterStreamingStarted: once the response header went to
// the client, an upstream failing mid-body is not retried: the client sees
// a cut-short body and the other target never gets the request.
func TestTrafficNoRetryAfterStreamingStarted(t *testing.T) {
	truncAddr, truncHits := startTruncating(t)
	healthy := startCounting(t, 200, "ok")
	gw := gatewaytest.Start(t, fmt.Sprintf(retryConfig, truncAddr, healthy.addr, 2, "{ ratio: 1, min_per_second: 100 }"))

	const n = 6
	var cut, whole int64
	for range n {
		resp, err := client.Get(gw.URL("/download"))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode != 200:
			t.Fatalf("status %d: the header was sent before the upstream failed", resp.StatusCode)
		case err != nil:
			if len(body) == 0 || len(body) >= 1<<20 {
				t.Fatalf("cut-short response delivered %d bytes", len(body))
			}
			cut++
		case string(body) == "ok":
			whole++
		default:
			t.Fatalf("unexpected body of %d bytes", len(body))
		}
	}
	if cut == 0 {
		t.Fatal("no request met the failing target")
	}
	if truncHits.Load() != cut || healthy.hits.Load() != whole {
		t.Fatalf("failing target %d, healthy target %d requests; clients saw %d cut short and %d whole: a response that started streaming must not be retried",
			truncHits.Load(), healthy.hits.Load(), cut, whole)
	}
	if got := retriesMetric(t, gw, "api"); got != 0 {
		t.Fatalf("gateway_upstream_retries_total = %d, want 0", got)
	}
}
