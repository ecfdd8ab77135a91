package loadgen

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/valyala/fasthttp"
)

const testSecret = "HLjvi3Xxwl4tEEm2OzF8CoEYQYNMY_h4YtTDDtCe92_KbVYi"

// serve starts a fasthttp server on loopback running h.
func serve(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestMintTokensVerify(t *testing.T) {
	toks, err := MintTokens(TokenOptions{Secret: []byte(testSecret), Issuer: "gatewayd-auth", Audience: "api",
		Role: "admin", Users: 3, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key, err := auth.NewHMACKey([]byte(testSecret), "")
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(key, "gatewayd-auth", "api", 0)
	seen := map[string]bool{}
	for i, tok := range toks {
		c, err := v.Verify(tok, auth.TypeAccess)
		if err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if c.Role != "admin" || c.Email == "" || c.ID == "" || c.IssuedAt == 0 {
			t.Fatalf("token %d claims %+v", i, c)
		}
		if int64(c.ExpiresAt)%1000 != 0 {
			t.Fatalf("exp %d is not whole seconds", c.ExpiresAt)
		}
		if seen[c.Subject] || seen[c.ID] {
			t.Fatalf("token %d repeats sub %q or jti %q", i, c.Subject, c.ID)
		}
		seen[c.Subject], seen[c.ID] = true, true
	}
}

func TestMintTokensErrors(t *testing.T) {
	tests := []struct {
		name string
		give TokenOptions
		want error
	}{
		{name: "no users", give: TokenOptions{Secret: []byte(testSecret)}, want: ErrNoUsers},
		{name: "short secret", give: TokenOptions{Secret: []byte("short"), Users: 1}, want: auth.ErrShortSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := MintTokens(tt.give); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRunOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		give Options
		want error
	}{
		{name: "no scheme", give: Options{URL: "127.0.0.1:1/x", Duration: time.Second}, want: ErrBadURL},
		{name: "https", give: Options{URL: "https://127.0.0.1:1/", Duration: time.Second}, want: ErrBadURL},
		{name: "no duration", give: Options{URL: "http://127.0.0.1:1/"}, want: ErrNoDuration},
		{name: "negative rate", give: Options{URL: "http://127.0.0.1:1/", Duration: time.Second, Rate: -1}, want: ErrBadRate},
		{name: "bad header", give: Options{URL: "http://127.0.0.1:1/", Duration: time.Second, Headers: []string{"nocolon"}}, want: ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.give); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// TestRunClosedLoopSpreadsTokens checks the counts and that every user's
// token is sent.
func TestRunClosedLoopSpreadsTokens(t *testing.T) {
	toks := []string{"tok-a", "tok-b", "tok-c", "tok-d", "tok-e"}
	var seen [5]atomic.Uint64
	var other atomic.Uint64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		a := string(ctx.Request.Header.Peek("Authorization"))
		if string(ctx.Request.Header.Peek("X-Bench")) != "1" {
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			return
		}
		for i, tok := range toks {
			if a == "Bearer "+tok {
				seen[i].Add(1)
				if i == 4 {
					ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
				}
				return
			}
		}
		other.Add(1)
	})
	res, err := Run(context.Background(), Options{URL: url + "/x", Connections: 3, Duration: 300 * time.Millisecond,
		Tokens: toks, Headers: []string{"X-Bench: 1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Mode != "closed" || res.Users != 5 {
		t.Fatalf("result %+v", res)
	}
	var total uint64
	for i := range seen {
		if seen[i].Load() == 0 {
			t.Fatalf("token %d never sent", i)
		}
		total += seen[i].Load()
	}
	if other.Load() != 0 {
		t.Fatalf("%d requests without a known token", other.Load())
	}
	if res.Requests > total {
		t.Fatalf("%d responses counted, server saw %d", res.Requests, total)
	}
	if res.Status["200"]+res.Status["429"] != res.Requests || res.Non2xx != res.Status["429"] || res.Non2xx == 0 {
		t.Fatalf("status breakdown %v, non-2xx %d, requests %d", res.Status, res.Non2xx, res.Requests)
	}
	if res.Latency.Count != res.Requests || res.Latency.P50 <= 0 || res.Latency.P999 < res.Latency.P50 {
		t.Fatalf("latency %+v", res.Latency)
	}
	if !strings.Contains(res.Text(), "429=") {
		t.Fatalf("summary lacks the status breakdown:\n%s", res.Text())
	}
}

// TestRunOpenLoopCorrectsForStalls runs open loop against a server that
// stalls once: latencies measured from the due time include the wait of
// the requests queued behind the stall, service times do not.
func TestRunOpenLoopCorrectsForStalls(t *testing.T) {
	var n atomic.Int64
	url := serve(t, func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 5 {
			time.Sleep(200 * time.Millisecond)
		}
	})
	res, err := Run(context.Background(), Options{URL: url, Connections: 1, Duration: 600 * time.Millisecond, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "open" || res.ServiceTime == nil || res.Requests == 0 {
		t.Fatalf("result %+v", res)
	}
	// The stall delays about 20 requests due every 10 ms; their corrected
	// latencies shrink from 200 ms, so the median covers part of it while
	// the median service time stays small.
	if res.Latency.Max < 150 {
		t.Fatalf("corrected max %.1f ms, want the 200 ms stall", res.Latency.Max)
	}
	if res.Latency.P90 <= res.ServiceTime.P90 {
		t.Fatalf("corrected p90 %.2f ms not above service-time p90 %.2f ms", res.Latency.P90, res.ServiceTime.P90)
	}
}

func TestRunCountsConnectErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := Run(context.Background(), Options{URL: "http://" + addr + "/", Connections: 2, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors == 0 || res.ErrorKinds["connect"] != res.Errors {
		t.Fatalf("result %+v", res)
	}
}

func TestRunReconnectsPerConn(t *testing.T) {
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {},
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				conns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	res, err := Run(context.Background(), Options{URL: "http://" + ln.Addr().String() + "/", Connections: 1,
		Duration: 300 * time.Millisecond, RequestsPerConn: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Fatalf("result %+v", res)
	}
	if min := int64(res.Requests / 10); conns.Load() < min {
		t.Fatalf("%d connections for %d requests, want at least %d", conns.Load(), res.Requests, min)
	}
}
