//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// connAlive reports whether an idle pooled connection may still carry a
// request: the upstream has neither closed it nor sent anything unasked
// (such as a 408 before closing). It peeks at the socket without blocking.
func connAlive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Only "nothing to read yet" means alive. No error means a byte or an
		// orderly close (0 bytes) is waiting; any other error means the
		// connection is broken.
		alive = errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR)
		return true
	})
	return err == nil && alive
}
