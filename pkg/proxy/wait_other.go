//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

import "net"

// waitReadable returns at once on this platform, which has no non-blocking
// peek; the tunnel's Read then waits holding a copy buffer.
func waitReadable(net.Conn) error { return nil }
