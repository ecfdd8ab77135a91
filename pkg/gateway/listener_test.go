package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/proxy"
	"go.uber.org/zap"
)

// TestConnLimiterConcurrentDials fires connections at once from two
// addresses, one of them a trusted proxy: the untrusted one gets exactly
// its cap and JSON 503s for the rest, the trusted one only meets the total
// cap, and every place is given back when the connections close.
func TestConnLimiterConcurrentDials(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := proxy.ParseTrustedProxies([]string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	const (
		max   = 30
		perIP = 8
		dials = 25 // from each address
	)
	l := newConnLimiter(inner, max, perIP, func() *proxy.TrustedProxies { return trusted }, zap.NewNop())
	defer l.Close()

	var (
		mu       sync.Mutex
		accepted []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()

	type outcome struct {
		from    string
		refused bool
		body    map[string]string
	}
	results := make(chan outcome, 2*dials)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
		for range dials {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.Dial("tcp", inner.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				// An admitted connection gets no answer (nothing serves it
				// here); a refused one gets the 503 at once.
				_ = c.SetDeadline(time.Now().Add(time.Second))
				_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					results <- outcome{from: from}
					return
				}
				defer resp.Body.Close()
				var body map[string]string
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 503 ||
					resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
					t.Errorf("refusal: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
				}
				results <- outcome{from: from, refused: true, body: body}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(results)

	admitted := map[string]int{}
	for r := range results {
		if !r.refused {
			admitted[r.from]++
			continue
		}
		if r.body["error"] != "unavailable" || r.body["message"] == "" || r.body["request_id"] == "" {
			t.Errorf("refusal body %v", r.body)
		}
	}
	// Which address fills the total cap first depends on the order the
	// kernel queues the dials: the untrusted one never gets more than its
	// cap, and together they fill the total cap exactly.
	if admitted["127.0.0.1"] > perIP {
		t.Errorf("untrusted address: %d admitted, over its cap %d", admitted["127.0.0.1"], perIP)
	}
	if got := admitted["127.0.0.1"] + admitted["127.0.0.2"]; got != max {
		t.Errorf("%d admitted in all (%v), want the total cap %d", got, admitted, max)
	}

	// The refusals finish in the background once their clients closed.
	for deadline := time.Now().Add(5 * time.Second); l.rejecting.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d refusals still running", l.rejecting.Load())
		}
	}
	mu.Lock()
	for _, c := range accepted {
		c.Close()
		c.Close() // a second Close must not count twice
	}
	mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total != 0 || len(l.byIP) != 0 {
		t.Fatalf("after every close: total %d, per address %v", l.total, l.byIP)
	}
}
