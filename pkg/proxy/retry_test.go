package proxy

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func statusHandler(code int, body string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(code)
		ctx.SetBodyString(body)
	}
}

func TestRetryBudgetRatio(t *testing.T) {
	b := newRetryBudget(RetryBudget{Ratio: 0.2, Window: 10 * time.Second})
	const sec = 1_000_000
	for range 100 {
		b.request(sec)
	}
	granted := 0
	for range 50 {
		if b.allow(sec) {
			granted++
		}
	}
	if granted != 20 {
		t.Fatalf("granted %d retries for 100 requests at ratio 0.2, want 20", granted)
	}
	// More requests make room again.
	for range 5 {
		b.request(sec + 1)
	}
	if !b.allow(sec + 1) {
		t.Fatal("no retry after 5 more requests")
	}
	if b.allow(sec + 1) {
		t.Fatal("a second retry for 5 more requests")
	}
}

func TestRetryBudgetWindowSlides(t *testing.T) {
	b := newRetryBudget(RetryBudget{Ratio: 0.5, Window: 3 * time.Second})
	const sec = 2_000_000
	for range 10 {
		b.request(sec)
	}
	for range 5 {
		if !b.allow(sec + 1) {
			t.Fatal("retry refused within the budget")
		}
	}
	if b.allow(sec + 2) {
		t.Fatal("retry granted over the budget")
	}
	// At sec+3 the requests of sec left the window; the retries of sec+1
	// have not.
	b.request(sec + 3)
	if b.allow(sec + 3) {
		t.Fatal("retry granted although the window's requests expired")
	}
	// Long after, everything expired: 2 requests, 1 retry.
	b.request(sec + 100)
	b.request(sec + 100)
	if !b.allow(sec + 100) {
		t.Fatal("retry refused in a fresh window")
	}
	if b.allow(sec + 100) {
		t.Fatal("stale retries or requests counted")
	}
}

func TestRetryBudgetMinPerSecond(t *testing.T) {
	b := newRetryBudget(RetryBudget{Ratio: 0.2, MinPerSecond: 3, Window: 2 * time.Second})
	const sec = 3_000_000
	// No requests at all: 3 per second of a 2s window.
	for i := range 6 {
		if !b.allow(sec) {
			t.Fatalf("retry %d refused within min_per_second", i+1)
		}
	}
	if b.allow(sec) {
		t.Fatal("retry granted over min_per_second x window")
	}
}

func TestRetryBudgetConcurrentNeverOvergrants(t *testing.T) {
	b := newRetryBudget(RetryBudget{Ratio: 0.2, Window: 10 * time.Second})
	const sec = 4_000_000
	for range 1000 {
		b.request(sec)
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if b.allow(sec) {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if g := granted.Load(); g > 200 || g < 150 {
		t.Fatalf("granted %d retries for 1000 requests at ratio 0.2, want at most 200 (and not far below)", g)
	}
}

func TestStatusRetry(t *testing.T) {
	failing := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, "down"))
	live := startBackend(t, textHandler("live"))
	tests := []struct {
		name        string
		giveMethod  string
		giveRetryOn []string
		giveRetries int
		wantBody    string
		wantLive    int64
	}{
		{name: "GET retried", giveMethod: fasthttp.MethodGet, giveRetryOn: []string{"connect", "503"}, giveRetries: 1, wantBody: "live", wantLive: 1},
		{name: "HEAD retried", giveMethod: fasthttp.MethodHead, giveRetryOn: []string{"503"}, giveRetries: 1, wantLive: 1},
		{name: "PUT retried", giveMethod: fasthttp.MethodPut, giveRetryOn: []string{"503"}, giveRetries: 1, wantBody: "live", wantLive: 1},
		{name: "DELETE retried", giveMethod: fasthttp.MethodDelete, giveRetryOn: []string{"503"}, giveRetries: 1, wantBody: "live", wantLive: 1},
		{name: "POST not retried", giveMethod: fasthttp.MethodPost, giveRetryOn: []string{"503"}, giveRetries: 1, wantBody: "down"},
		{name: "PATCH not retried", giveMethod: fasthttp.MethodPatch, giveRetryOn: []string{"503"}, giveRetries: 1, wantBody: "down"},
		{name: "status not listed", giveMethod: fasthttp.MethodGet, giveRetryOn: []string{"connect", "502"}, giveRetries: 1, wantBody: "down"},
		{name: "default retry_on", giveMethod: fasthttp.MethodGet, giveRetries: 1, wantBody: "down"},
		{name: "no retries", giveMethod: fasthttp.MethodGet, giveRetryOn: []string{"503"}, wantBody: "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The failing target is first in the rotation.
			u := newTestUpstream(t, Config{Targets: []string{failing.url, live.url}, Retries: tt.giveRetries, RetryOn: tt.giveRetryOn})
			beforeLive, beforeFailing := live.hits.Load(), failing.hits.Load()
			retriesBefore := u.retried.Get()
			body, err := get(t, u, tt.giveMethod, "/")
			if err != nil {
				t.Fatal(err)
			}
			if tt.giveMethod != fasthttp.MethodHead && body != tt.wantBody {
				t.Fatalf("body %q, want %q", body, tt.wantBody)
			}
			if got := failing.hits.Load() - beforeFailing; got != 1 {
				t.Fatalf("failing target got %d requests, want 1", got)
			}
			if got := live.hits.Load() - beforeLive; got != tt.wantLive {
				t.Fatalf("live target got %d requests, want %d", got, tt.wantLive)
			}
			if got := u.retried.Get() - retriesBefore; got != uint64(tt.wantLive) {
				t.Fatalf("gateway_upstream_retries_total rose by %d, want %d", got, tt.wantLive)
			}
		})
	}
}

func TestStatusRetriesCountAgainstRetries(t *testing.T) {
	var backends []*backend
	var targets []string
	for range 4 {
		b := startBackend(t, statusHandler(fasthttp.StatusBadGateway, "bad"))
		backends = append(backends, b)
		targets = append(targets, b.url)
	}
	u := newTestUpstream(t, Config{Targets: targets, Retries: 2, RetryOn: []string{"502"}})
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("/")
	if err := u.Do(req, resp, 0); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusBadGateway {
		t.Fatalf("status %d, want the last attempt's 502", resp.StatusCode())
	}
	var total int64
	for i, b := range backends {
		h := b.hits.Load()
		if h > 1 {
			t.Fatalf("target %d got %d attempts: a retry must go to an untried target", i, h)
		}
		total += h
	}
	if total != 3 {
		t.Fatalf("%d attempts, want 3 (retries: 2)", total)
	}
}

func TestStatusRetryToSameTargetWhenAlone(t *testing.T) {
	var n atomic.Int64
	b := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
		ctx.SetBodyString("ok")
	})
	u := newTestUpstream(t, Config{Targets: []string{b.url}, Retries: 1, RetryOn: []string{"503"}})
	body, err := get(t, u, fasthttp.MethodGet, "/")
	if err != nil || body != "ok" {
		t.Fatalf("body %q, error %v, want ok from the second attempt", body, err)
	}
}

func TestStatusRetryOfStreamedResponse(t *testing.T) {
	// A 503 with a body too large to buffer arrives as a stream: it is
	// dropped (and its connection closed) before the retry.
	big := strings.Repeat("x", 2*bufferLimit)
	failing := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, big))
	live := startBackend(t, textHandler("live"))
	u := newTestUpstream(t, Config{Targets: []string{failing.url, live.url}, Retries: 1, RetryOn: []string{"503"}})
	for range 3 {
		body, err := get(t, u, fasthttp.MethodGet, "/")
		if err != nil {
			t.Fatal(err)
		}
		if body != "live" && body != big {
			t.Fatalf("unexpected body of %d bytes", len(body))
		}
	}
	if live.hits.Load() != 3 {
		t.Fatalf("live target got %d requests, want 3", live.hits.Load())
	}
}

func TestNoStatusRetryWithBodyStream(t *testing.T) {
	failing := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, "down"))
	live := startBackend(t, textHandler("live"))
	u := newTestUpstream(t, Config{Targets: []string{failing.url, live.url}, Retries: 1, RetryOn: []string{"503"}})
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPut)
	req.SetRequestURI("/")
	req.SetBodyStream(bytes.NewReader([]byte("streamed")), -1)
	if err := u.Do(req, resp, 0); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusServiceUnavailable || live.hits.Load() != 0 {
		t.Fatalf("status %d, live hits %d: a streamed body cannot be sent again", resp.StatusCode(), live.hits.Load())
	}
}

func TestRetryBudgetLimitsStatusRetries(t *testing.T) {
	failing := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, "down"))
	other := startBackend(t, statusHandler(fasthttp.StatusServiceUnavailable, "down"))
	u := newTestUpstream(t, Config{
		Targets: []string{failing.url, other.url}, Retries: 1, RetryOn: []string{"503"},
		RetryBudget: &RetryBudget{Ratio: 0.1, Window: 10 * time.Second},
	})
	const n = 200
	for range n {
		if _, err := get(t, u, fasthttp.MethodGet, "/"); err != nil {
			t.Fatal(err)
		}
	}
	attempts := failing.hits.Load() + other.hits.Load()
	extra := attempts - n
	// The test may straddle a window boundary only if it runs for 10s.
	if extra > n/10 || extra < n/10-2 {
		t.Fatalf("%d attempts for %d requests: %d retries, want about %d (ratio 0.1)", attempts, n, extra, n/10)
	}
	if got := int64(u.retried.Get()); got != extra {
		t.Fatalf("gateway_upstream_retries_total = %d, want %d", got, extra)
	}
}

func TestConnectRetryNeedsConnectInRetryOn(t *testing.T) {
	live := startBackend(t, textHandler("live"))
	u := newTestUpstream(t, Config{Targets: []string{deadURL(t), live.url}, Retries: 1, RetryOn: []string{"503"}, EjectAfter: -1})
	_, err := get(t, u, fasthttp.MethodGet, "/")
	mustKind(t, err, ErrBadGateway)
	if live.hits.Load() != 0 {
		t.Fatalf("live target got %d requests: retry_on without connect must not retry connect failures", live.hits.Load())
	}
}
