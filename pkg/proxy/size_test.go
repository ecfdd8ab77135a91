package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/gatewayd/gatewayd/pkg/metrics"
)

type countingObserver struct{ n, calls int64 }

func (c *countingObserver) ObserveResponseSize(n int64) { c.n += n; c.calls++ }

func TestObserveBodySizeWithoutStream(t *testing.T) {
	var resp fasthttp.Response
	resp.SetBodyString("buffered")
	var obs countingObserver
	if ObserveBodySize(&resp, &obs) {
		t.Fatal("ObserveBodySize accepted a buffered body")
	}
	resp.SetBodyStream(strings.NewReader("other stream"), -1)
	if ObserveBodySize(&resp, &obs) {
		t.Fatal("ObserveBodySize accepted a stream no Upstream set")
	}
}

// TestStreamedBodySizeCountsWhatWasRead checks that a stream closed early
// (the client went away) reports the bytes handed out, not those read
// ahead from the upstream.
func TestStreamedBodySizeCountsWhatWasRead(t *testing.T) {
	b := startBackend(t, textHandler(strings.Repeat("c", 300<<10)))
	u := newTestUpstream(t, Config{Targets: []string{b.url}})
	req := rawRequest(t, benchRequest)
	var resp fasthttp.Response
	if err := u.Do(req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	var obs countingObserver
	if !ObserveBodySize(&resp, &obs) {
		t.Fatal("a 300 KiB answer is not a body stream of the upstream")
	}
	buf := make([]byte, 1000)
	read := 0
	for read < 5000 {
		n, err := resp.BodyStream().Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	if err := resp.CloseBodyStream(); err != nil {
		t.Fatal(err)
	}
	if obs.calls != 1 || obs.n != int64(read) {
		t.Fatalf("observed %d bytes in %d calls, want %d in 1", obs.n, obs.calls, read)
	}
}

// TestAttemptsCountedByCodeClass checks gateway_upstream_requests_total:
// every attempt counts, a retried connect failure as error.
func TestAttemptsCountedByCodeClass(t *testing.T) {
	ok := startBackend(t, textHandler("ok"))
	failing := startBackend(t, func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusBadGateway) })
	name := "attempts-" + strings.ReplaceAll(t.Name(), "/", "-")
	u := newTestUpstream(t, Config{Name: name, Targets: []string{"http://127.0.0.1:1", ok.url}, Retries: 1, EjectAfter: 1000})
	bad := newTestUpstream(t, Config{Name: name + "-5xx", Targets: []string{failing.url}})
	const n = 6
	for range n {
		req := rawRequest(t, benchRequest)
		var resp fasthttp.Response
		if err := u.Do(req, &resp, 0); err != nil {
			t.Fatal(err)
		}
		if err := bad.Do(req, &resp, 0); err != nil {
			t.Fatal(err)
		}
	}
	var buf strings.Builder
	metrics.WritePrometheus(&buf)
	out := buf.String()
	// Requests that started on the closed port failed to connect there
	// (error) and succeeded on the retry (2xx).
	errLine := `gateway_upstream_requests_total{upstream="` + name + `",code_class="error"} `
	i := strings.Index(out, errLine)
	if i < 0 {
		t.Fatalf("missing %s", errLine)
	}
	if v := out[i+len(errLine) : i+len(errLine)+1]; v == "0" {
		t.Errorf("no connect failure counted as error: %s0", errLine)
	}
	for _, want := range []string{
		`gateway_upstream_requests_total{upstream="` + name + `",code_class="2xx"} 6`,
		`gateway_upstream_requests_total{upstream="` + name + `-5xx",code_class="5xx"} 6`,
		`gateway_upstream_requests_total{upstream="` + name + `-5xx",code_class="error"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}
