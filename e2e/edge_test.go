package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const drainConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  shutdown_delay: 1s
  shutdown_timeout: 5s
log: { level: warn, access_log: false }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: api
    match: { path_prefix: /v1/ }
    upstream: echo
`

// drainTally counts what happened to the requests of TestDrainLosesNothing.
type drainTally struct {
	ok         atomic.Int64 // a full response
	closeHdr   atomic.Int64 // of which carried Connection: close
	refused    atomic.Int64 // the dial was refused: nothing sent
	notSent    atomic.Int64 // the write failed: the client knows it was not sent
	lost       atomic.Int64 // written on a kept-alive connection, no full response
	newConnErr atomic.Int64 // written on a fresh connection, no response
}

// keepAliveClient sends POSTs (never retried by any client) on one
// keep-alive connection at a time, reconnecting when the gateway closes it,
// until stop is closed.
func keepAliveClient(addr string, stop <-chan struct{}, tally *drainTally) {
	var (
		c      net.Conn
		br     *bufio.Reader
		onConn int // requests completed on c
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	const req = "POST /v1/drain HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	for {
		select {
		case <-stop:
			return
		default:
		}
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				tally.refused.Add(1)
				time.Sleep(10 * time.Millisecond)
				c = nil
				continue
			}
			br, onConn = bufio.NewReader(c), 0
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			tally.notSent.Add(1)
			c.Close()
			c = nil
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			if onConn > 0 {
				tally.lost.Add(1)
			} else {
				tally.newConnErr.Add(1)
			}
			c.Close()
			c = nil
			continue
		}
		tally.ok.Add(1)
		onConn++
		if resp.Close {
			tally.closeHdr.Add(1)
			c.Close()
			c = nil
		}
	}
}

// TestDrainLosesNothing sends SIGTERM while 32 keep-alive clients hammer
// the gateway: through shutdown_delay and the drain every response carries
// Connection: close, so no request written on a kept-alive connection meets
// a closed socket.
func TestDrainLosesNothing(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(drainConfig, startEcho(t, "echo")))
	var tally drainTally
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keepAliveClient(gw.Addr, stop, &tally)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	before := tally.ok.Load()
	if before == 0 {
		close(stop)
		wg.Wait()
		t.Fatal("no request succeeded before SIGTERM")
	}
	gw.Signal(syscall.SIGTERM)
	code, err := gw.Wait(15 * time.Second)
	// Keep knocking briefly after the exit: those dials are refused.
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil || code != 0 {
		t.Fatalf("exit code %d, %v", code, err)
	}
	t.Logf("responses %d (%d before SIGTERM, %d with Connection: close), refused dials %d, unsent %d, failed on a new connection %d, lost %d",
		tally.ok.Load(), before, tally.closeHdr.Load(), tally.refused.Load(), tally.notSent.Load(), tally.newConnErr.Load(), tally.lost.Load())
	if n := tally.lost.Load(); n != 0 {
		t.Fatalf("%d requests written on kept-alive connections got no response", n)
	}
	if tally.closeHdr.Load() == 0 {
		t.Fatal("no response carried Connection: close during the drain")
	}
}

// TestAdminRefusesCrossSiteReload: a browser page cannot make the gateway
// reload, neither by a cross-site POST (Origin) nor through DNS rebinding
// (a foreign Host), while scrapers with any Host keep reading /metrics.
func TestAdminRefusesCrossSiteReload(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(drainConfig, startEcho(t, "echo")))
	_, port, _ := net.SplitHostPort(gw.AdminAddr)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveHdr    map[string]string
		wantStatus int
	}{
		{name: "cross-site post", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Origin": "http://evil.example"}, wantStatus: 403},
		{name: "rebound host", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "evil.example"}, wantStatus: 403},
		{name: "rebound host with port", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "evil.example:" + port}, wantStatus: 403},
		{name: "operator", giveMethod: "POST", givePath: "/-/reload", wantStatus: 200},
		{name: "operator by localhost", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "localhost:" + port}, wantStatus: 200},
		{name: "scraper", giveMethod: "GET", givePath: "/metrics", giveHdr: map[string]string{"Host": "gw-1.internal:9901"}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.giveMethod, gw.AdminURL(tt.givePath), tt.giveHdr, "")
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if tt.wantStatus == 403 {
				if e := decodeError(t, r); e.Error != "forbidden" {
					t.Fatalf("code %q", e.Error)
				}
			}
		})
	}
}
