package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens the receiving end of a notification socket at name.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestStates(t *testing.T) {
	tests := []struct {
		name     string
		giveAddr func(t *testing.T) string
	}{
		{name: "path", giveAddr: func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify.sock") }},
		{name: "abstract", giveAddr: func(t *testing.T) string {
			return "@gatewayd-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.giveAddr(t)
			srv := listen(t, addr)
			t.Setenv("NOTIFY_SOCKET", addr)
			n, err := Open()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if err := n.Ready(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, srv); got != "READY=1" {
				t.Errorf("Ready sent %q", got)
			}
			if err := n.Reloading(); err != nil {
				t.Fatal(err)
			}
			got := recv(t, srv)
			lines := strings.Split(got, "\n")
			if lines[0] != "RELOADING=1" || len(lines) != 2 || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
				t.Fatalf("Reloading sent %q, want RELOADING=1 and MONOTONIC_USEC=", got)
			}
			if usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec <= 0 {
				t.Errorf("MONOTONIC_USEC in %q: %v", got, err)
			}
			if err := n.Stopping(); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, srv); got != "STOPPING=1" {
				t.Errorf("Stopping sent %q", got)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Ready(); err != nil {
				t.Errorf("Ready after Close: %v, want a no-op", err)
			}
		})
	}
}

func TestWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Fatal("Enabled() = true without NOTIFY_SOCKET")
	}
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	stop, err := n.StartWatchdog(func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	stop()
	var nilNotifier *Notifier
	if err := nilNotifier.Stopping(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		give    string
		wantErr string
	}{
		{give: "relative.sock", wantErr: "want an absolute path or @abstract name"},
		{give: filepath.Join(t.TempDir(), "missing.sock"), wantErr: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", tt.give)
			n, err := Open()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open() error %v, want one containing %q", err, tt.wantErr)
			}
			if n.Enabled() {
				t.Error("a Notifier that failed to open is enabled")
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		name     string
		giveUsec string
		givePID  string
		want     time.Duration
		wantErr  bool
	}{
		{name: "unset"},
		{name: "set", giveUsec: "30000000", want: 30 * time.Second},
		{name: "this process", giveUsec: "2000000", givePID: "self", want: 2 * time.Second},
		{name: "another process", giveUsec: "2000000", givePID: "1"},
		{name: "zero", giveUsec: "0", wantErr: true},
		{name: "garbage", giveUsec: "30s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tt.giveUsec)
			pid := tt.givePID
			if pid == "self" {
				pid = strconv.Itoa(os.Getpid())
			}
			t.Setenv("WATCHDOG_PID", pid)
			got, err := WatchdogInterval()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("WatchdogInterval() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestWatchdogPings(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify.sock")
	srv := listen(t, addr)
	t.Setenv("NOTIFY_SOCKET", addr)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50ms
	t.Setenv("WATCHDOG_PID", "")
	n, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	start := time.Now()
	stop, err := n.StartWatchdog(func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := recv(t, srv); got != "WATCHDOG=1" {
			t.Fatalf("watchdog sent %q", got)
		}
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("3 pings in %v, want one every 50ms", d)
	}
	stop()
	stop()
	// Pings sent before stop returned are queued already: drain them, then
	// nothing more may come.
	buf := make([]byte, 64)
	for {
		if err := srv.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Read(buf); err != nil {
			break
		}
	}
	if err := srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Read(buf); err == nil {
		t.Error("a ping after stop")
	}
}
