//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

import "net"

// connAlive reports whether an idle pooled connection may still carry a
// request. This platform has no non-blocking peek, so it assumes it may;
// idempotent requests are still replayed when such a connection fails.
func connAlive(net.Conn) bool { return true }
