//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable blocks until c has a byte to read, an orderly close or an
// error waiting, or its read deadline passes, without a read buffer: the
// runtime's poller wakes the goroutine, and a non-blocking peek tells a
// real wake-up from a spurious one. This is what keeps idle tunnels free
// of copy buffers. Connections that are not plain sockets (TLS, wrappers)
// return at once, and their Read then waits holding a buffer.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR) {
			// Nothing yet: park until the poller reports the socket readable.
			return false
		}
		// A byte, an orderly close, or an error such as a reset, which the
		// peek has consumed and a later read would report as a close.
		perr = rerr
		return true
	})
	if err != nil {
		return err
	}
	if perr != nil {
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: perr}
	}
	return nil
}
