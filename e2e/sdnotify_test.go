package e2e

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const notifyConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
upstreams:
  u: { targets: ["http://%s"] }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: u
`

// notifications collects what gatewayd sends to its NOTIFY_SOCKET,
// counting the watchdog pings apart from the state changes.
type notifications struct {
	t     *testing.T
	conn  *net.UnixConn
	pings int
}

// next returns the next state change (watchdog pings are counted, not
// returned).
func (n *notifications) next(what string) string {
	n.t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := n.conn.SetReadDeadline(deadline); err != nil {
			n.t.Fatal(err)
		}
		k, err := n.conn.Read(buf)
		if err != nil {
			n.t.Fatalf("waiting for %s: %v", what, err)
		}
		msg := string(buf[:k])
		if msg == "WATCHDOG=1" {
			n.pings++
			continue
		}
		return msg
	}
}

// TestSystemdNotify runs gatewayd as systemd would for Type=notify with
// WatchdogSec: READY=1 once it serves, RELOADING=1 with MONOTONIC_USEC and
// READY=1 around a SIGHUP reload, WATCHDOG=1 pings, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	tests := []struct {
		name       string
		giveSocket func(t *testing.T) string
	}{
		{name: "path", giveSocket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }},
		{name: "abstract", giveSocket: func(t *testing.T) string { return "@gatewayd-e2e-notify-" + filepath.Base(t.TempDir()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := tt.giveSocket(t)
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			n := &notifications{t: t, conn: conn}

			cfg := strings.Replace(notifyConfig, "%s", startEcho(t, "u"), 1)
			gw := gatewaytest.Start(t, cfg, gatewaytest.Options{
				NoWait: true,
				Env:    []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000", "WATCHDOG_PID="},
			})

			if got := n.next("READY=1"); got != "READY=1" {
				t.Fatalf("first notification %q, want READY=1", got)
			}
			// Ready means serving: no retry needed.
			resp, err := http.Get(gw.AdminURL("/readyz"))
			if err != nil {
				t.Fatalf("/readyz right after READY=1: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("/readyz right after READY=1: %d", resp.StatusCode)
			}

			gw.WriteConfig(cfg + "  - name: extra\n    match: { path: /extra }\n    upstream: u\n")
			gw.Signal(syscall.SIGHUP)
			got := n.next("RELOADING=1")
			if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
				t.Fatalf("on SIGHUP: %q, want RELOADING=1 and MONOTONIC_USEC=", got)
			}
			if got := n.next("READY=1 after the reload"); got != "READY=1" {
				t.Fatalf("after the reload: %q, want READY=1", got)
			}
			if !gw.WaitLog(`"configuration reloaded"`, 5*time.Second) {
				t.Fatal("no reload in the log")
			}

			// A few watchdog periods (100ms pings) pass.
			time.Sleep(350 * time.Millisecond)
			gw.Signal(syscall.SIGTERM)
			if got := n.next("STOPPING=1"); got != "STOPPING=1" {
				t.Fatalf("on SIGTERM: %q, want STOPPING=1", got)
			}
			if code, err := gw.Wait(30 * time.Second); err != nil || code != 0 {
				t.Fatalf("exit %d, %v; want 0", code, err)
			}
			if n.pings < 2 {
				t.Errorf("%d watchdog pings with WATCHDOG_USEC=200000 over more than 350ms, want at least 2", n.pings)
			}
		})
	}
}
