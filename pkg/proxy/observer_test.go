package proxy

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// recordingObserver records what DoObserved and UpgradeObserved tell it,
// and sets a header per attempt as tracing does.
type recordingObserver struct {
	attempts []Attempt
	ends     []string // "status N" or "error"
}

func (o *recordingObserver) AttemptStart(req *fasthttp.Request, a Attempt) {
	o.attempts = append(o.attempts, a)
	req.Header.Set("X-Attempt", a.Target)
}

func (o *recordingObserver) AttemptEnd(resp *fasthttp.Response, err error) {
	if err != nil {
		o.ends = append(o.ends, "error")
		return
	}
	o.ends = append(o.ends, "status "+string(fasthttp.AppendUint(nil, resp.StatusCode())))
}

// Each attempt, a retry after a connect failure included, is reported in
// a start/end pair, and what the observer sets on the request goes out
// with that attempt.
func TestDoObservedReportsEachAttempt(t *testing.T) {
	var gotAttempt string
	live := startBackend(t, func(ctx *fasthttp.RequestCtx) {
		gotAttempt = string(ctx.Request.Header.Peek("X-Attempt"))
		ctx.SetStatusCode(fasthttp.StatusAccepted)
	})
	dead := deadURL(t)
	u := newTestUpstream(t, Config{Name: "obs", Targets: []string{dead, live.url}, Retries: 1, EjectAfter: -1})
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("/x")
	var o recordingObserver
	if err := u.DoObserved(req, resp, 0, &o); err != nil {
		t.Fatal(err)
	}
	want := []Attempt{
		{Upstream: "obs", Target: dead, Addr: strings.TrimPrefix(dead, "http://"), Client: ClientHTTP, N: 0},
		{Upstream: "obs", Target: live.url, Addr: live.addr, Client: ClientHTTP, N: 1},
	}
	if len(o.attempts) != 2 || o.attempts[0] != want[0] || o.attempts[1] != want[1] {
		t.Fatalf("attempts %+v, want %+v", o.attempts, want)
	}
	if strings.Join(o.ends, ",") != "error,status 202" {
		t.Fatalf("ends %v", o.ends)
	}
	if gotAttempt != live.url {
		t.Fatalf("the live target got X-Attempt %q, want its own attempt's %q", gotAttempt, live.url)
	}
}

// A failure without retry is one attempt ending in an error; a nil
// observer is allowed.
func TestDoObservedFailure(t *testing.T) {
	u := newTestUpstream(t, Config{Name: "obs", Targets: []string{deadURL(t)}})
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("/x")
	var o recordingObserver
	if err := u.DoObserved(req, resp, 0, &o); err == nil {
		t.Fatal("no error from a dead target")
	}
	if len(o.attempts) != 1 || strings.Join(o.ends, ",") != "error" {
		t.Fatalf("attempts %+v ends %v", o.attempts, o.ends)
	}
	if err := u.DoObserved(req, resp, 0, nil); err == nil {
		t.Fatal("no error from a dead target")
	}
}
