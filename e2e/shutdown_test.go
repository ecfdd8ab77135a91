package e2e

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// shutdownBudgetConfig: a 1s pre-stop delay inside a 3s shutdown_timeout.
const shutdownBudgetConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
server: { shutdown_delay: 1s, shutdown_timeout: 3s }
upstreams:
  a: { targets: ["http://%s"], timeout: 30s }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: a
`

// slowRequest sends GET /slow?sleep=d on a new connection and, once the
// request is on its way, returns a channel that gets the status (0 when
// the connection was cut) and when it arrived.
func slowRequest(t *testing.T, addr string, d time.Duration) <-chan [2]any {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /slow?sleep=%s HTTP/1.1\r\nHost: x\r\n\r\n", d)
	out := make(chan [2]any, 1)
	go func() {
		buf := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, _ := c.Read(buf)
		status := 0
		if n >= 12 {
			status, _ = strconv.Atoi(string(buf[9:12]))
		}
		out <- [2]any{status, time.Now()}
	}()
	return out
}

// TestShutdownTimeoutIncludesDelay: shutdown_timeout bounds the whole
// shutdown, shutdown_delay included. A request that ends within it is
// answered and the process exits 0; one that would not is cut off by then
// and the process exits 1.
func TestShutdownTimeoutIncludesDelay(t *testing.T) {
	up := startEcho(t, "A")
	tests := []struct {
		name       string
		giveSleep  time.Duration
		wantStatus int
		wantExit   int
	}{
		{name: "drain in time", giveSleep: 2 * time.Second, wantStatus: 200, wantExit: 0},
		{name: "drain past the timeout", giveSleep: 5 * time.Second, wantStatus: 0, wantExit: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := gatewaytest.Start(t, fmt.Sprintf(shutdownBudgetConfig, up))
			res := slowRequest(t, gw.Addr, tt.giveSleep)
			time.Sleep(200 * time.Millisecond) // the request reaches the upstream
			t0 := time.Now()
			gw.Signal(syscall.SIGTERM)
			code, err := gw.Wait(10 * time.Second)
			if err != nil {
				t.Fatalf("gatewayd still running 10s after SIGTERM")
			}
			exited := time.Since(t0)
			r := <-res
			status, at := r[0].(int), r[1].(time.Time)
			if status != tt.wantStatus || code != tt.wantExit {
				t.Fatalf("status %d, exit %d; want %d, %d", status, code, tt.wantStatus, tt.wantExit)
			}
			// shutdown_timeout is 3s; allow for process exit and a loaded machine.
			if cut := at.Sub(t0); cut > 3500*time.Millisecond {
				t.Fatalf("in-flight request ended %v after SIGTERM, past shutdown_timeout 3s", cut)
			}
			if exited > 4*time.Second {
				t.Fatalf("process exited %v after SIGTERM, want about shutdown_timeout 3s", exited)
			}
		})
	}
}
