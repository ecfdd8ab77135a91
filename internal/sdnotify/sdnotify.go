// Package sdnotify tells systemd about the daemon's state through the
// sd_notify protocol (a datagram on the unix socket named by NOTIFY_SOCKET),
// without cgo or libsystemd: READY=1 once the listeners are up, RELOADING=1
// and READY=1 around a reload, STOPPING=1 at shutdown, and WATCHDOG=1 pings
// when the unit sets WatchdogSec. Outside systemd every call does nothing.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Notifier sends state changes to the service manager. The zero value and a
// nil *Notifier do nothing, as does a Notifier opened without NOTIFY_SOCKET.
type Notifier struct {
	mu   sync.Mutex
	conn *net.UnixConn
}

// Open connects to the socket named by NOTIFY_SOCKET: a path, or an
// abstract socket written with a leading '@'. Without NOTIFY_SOCKET it
// returns a Notifier that does nothing.
func Open() (*Notifier, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return &Notifier{}, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return &Notifier{}, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: want an absolute path or @abstract name", name)
	}
	// The net package maps a leading '@' to Linux's abstract namespace.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return &Notifier{}, fmt.Errorf("sdnotify: %w", err)
	}
	return &Notifier{conn: conn}, nil
}

// Enabled reports whether the process runs under a service manager that
// listens for notifications.
func (n *Notifier) Enabled() bool {
	return n != nil && n.conn != nil
}

// Send sends one notification: newline-separated VAR=value assignments,
// as sd_notify(3) takes them.
func (n *Notifier) Send(state string) error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return nil
	}
	if _, err := n.conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready says start-up (or a reload) is complete: the configuration is
// loaded and the listeners accept connections.
func (n *Notifier) Ready() error {
	return n.Send("READY=1")
}

// Reloading says a reload began. MONOTONIC_USEC, which systemd requires
// since Type=notify-reload, carries the start time where the clock is
// available.
func (n *Notifier) Reloading() error {
	if usec, ok := monotonicUsec(); ok {
		return n.Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
	}
	return n.Send("RELOADING=1")
}

// Stopping says the graceful shutdown began.
func (n *Notifier) Stopping() error {
	return n.Send("STOPPING=1")
}

// WatchdogInterval returns how often the service manager expects WATCHDOG=1
// (WATCHDOG_USEC), or 0 when no watchdog is set for this process.
func WatchdogInterval() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q: want a positive number of microseconds", s)
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// StartWatchdog sends WATCHDOG=1 at half the interval the service manager
// asked for, until stop is called; onError gets the first failed send
// (later ones would repeat it). Without a watchdog it starts nothing.
func (n *Notifier) StartWatchdog(onError func(error)) (stop func(), err error) {
	every, err := WatchdogInterval()
	if err != nil || every == 0 || !n.Enabled() {
		return func() {}, err
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every / 2)
		defer t.Stop()
		reported := false
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := n.Send("WATCHDOG=1"); err != nil && !reported {
					reported = true
					onError(err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}, nil
}

// Close closes the socket; later calls send nothing.
func (n *Notifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.conn.Close()
	n.conn = nil
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
