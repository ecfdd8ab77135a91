package gateway

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"go.uber.org/zap"
)

const (
	// maxRejecting bounds the connections being answered 503 at once; past
	// it, further over-cap connections are closed without an answer, so a
	// flood cannot turn the rejections themselves into a goroutine pile.
	maxRejecting = 128

	// rejectLinger is how long a rejected connection is given to receive
	// the 503 and to finish sending its request before it is closed: closing
	// with unread request bytes would reset the connection and could destroy
	// the answer before the client read it.
	rejectLinger = time.Second

	// rejectDrainBytes bounds what is read from a rejected connection while
	// it lingers.
	rejectDrainBytes = 64 << 10
)

// Reasons a connection is refused, as gateway_connections_rejected_total
// labels them.
const (
	rejectMaxConnections = "max_connections"
	rejectPerIP          = "max_connections_per_ip"
)

// connLimiter wraps the client listener: it caps concurrent connections in
// total and per peer address, and answers those over a cap itself with the
// JSON 503 of the gateway's errors, before fasthttp sees them. The per-peer
// count uses the TCP peer address only, never anything the client sends;
// peers in trusted_proxies (load balancers, which carry many clients on
// their own addresses) are exempt from it and count only in the total.
type connLimiter struct {
	net.Listener
	max     int // 0: no cap
	perIP   int // 0: no cap
	trusted func() *proxy.TrustedProxies
	logger  *zap.Logger
	// wrapReject, when set, wraps a connection before it is answered 503:
	// on a TLS listener, the answer is written after the handshake (within
	// the same rejectLinger deadline), since a TLS client cannot read it
	// in plain text.
	wrapReject func(net.Conn) net.Conn

	mu        sync.Mutex
	total     int
	byIP      map[netip.Addr]int
	rejecting atomic.Int32
	lastLog   atomic.Int64 // unix seconds of the last rejection log line
}

func newConnLimiter(ln net.Listener, max, perIP int, trusted func() *proxy.TrustedProxies, logger *zap.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perIP: perIP, trusted: trusted, logger: logger, byIP: map[netip.Addr]int{}}
}

// Accept returns the next connection within the caps; connections over a
// cap are answered and closed in the background.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerAddr(c)
		// Decided once per connection: a reload that changes
		// trusted_proxies must not unbalance the counts.
		capped := l.perIP > 0 && ip.IsValid() && !l.trusted().ContainsAddr(ip)
		if reason := l.admit(ip, capped); reason != "" {
			l.reject(c, ip, reason)
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip, capped: capped}, nil
	}
}

// admit counts a new connection from ip, or returns why it is over a cap.
// capped says whether the per-address cap applies to it.
func (l *connLimiter) admit(ip netip.Addr, capped bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return rejectMaxConnections
	}
	if capped && l.byIP[ip] >= l.perIP {
		return rejectPerIP
	}
	l.total++
	if capped {
		l.byIP[ip]++
	}
	return ""
}

// release uncounts a connection admitted by admit.
func (l *connLimiter) release(ip netip.Addr, capped bool) {
	l.mu.Lock()
	l.total--
	if capped {
		if n := l.byIP[ip] - 1; n > 0 {
			l.byIP[ip] = n
		} else {
			delete(l.byIP, ip)
		}
	}
	l.mu.Unlock()
}

// reject answers c with the JSON 503 and closes it, in the background.
func (l *connLimiter) reject(c net.Conn, ip netip.Addr, reason string) {
	metrics.ConnectionsRejected(reason).Inc()
	if now := time.Now().Unix(); l.lastLog.Load() != now && l.lastLog.Swap(now) != now {
		// At most one line a second: a flood must not flood the log too.
		l.logger.Warn("client connection refused: over a connection cap", zap.String("cap", reason),
			zap.String("client_ip", ip.String()), zap.Int("max_connections", l.max), zap.Int("max_connections_per_ip", l.perIP))
	}
	if l.rejecting.Add(1) > maxRejecting {
		l.rejecting.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		if l.wrapReject != nil {
			c = l.wrapReject(c)
		}
		writeUnavailable(c, reason)
	}()
}

// writeUnavailable writes the 503 on a connection that fasthttp never saw,
// then lets the client finish sending before closing.
func writeUnavailable(c net.Conn, reason string) {
	defer c.Close()
	msg := "the gateway serves too many connections; retry later"
	if reason == rejectPerIP {
		msg = "too many connections from this address; retry later"
	}
	body := make([]byte, 0, 160)
	body = append(body, `{"error":"`+apierror.CodeUnavailable+`","message":"`+msg+`","request_id":"`...)
	body = appendUUID(body)
	body = append(body, "\"}"...)
	out := make([]byte, 0, 256+len(body))
	out = append(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\nRetry-After: 1\r\nConnection: close\r\nDate: "...)
	out = append(out, time.Now().UTC().Format(time.RFC1123)...)
	out = append(out, "\r\n\r\n"...)
	out = append(out, body...)
	_ = c.SetDeadline(time.Now().Add(rejectLinger))
	if _, err := c.Write(out); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	var buf [4 << 10]byte
	for read := 0; read < rejectDrainBytes; {
		n, err := c.Read(buf[:])
		read += n
		if err != nil {
			return
		}
	}
}

// peerAddr returns the connection's peer IP, IPv4-mapped addresses unmapped.
func peerAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn is an admitted connection; closing it frees its place.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	ip     netip.Addr
	capped bool
	closed atomic.Bool
}

// Close uncounts the connection, the first time, and closes it. The place
// is freed before the socket closes, so that a client that saw the close
// and connects again at once is never refused for the connection it just
// left.
func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip, c.capped)
	}
	return c.Conn.Close()
}

// errNoSyscallConn reports a wrapped connection without a socket.
var errNoSyscallConn = errors.New("gateway: connection has no socket")

// SyscallConn exposes the socket under the connection, which limitedConn
// reads without buffering: a WebSocket tunnel waits on it for readability
// without holding a copy buffer.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoSyscallConn
}

// CloseWrite half-closes the connection where it can (a tunnel passes one
// side's end on this way), else closes it.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
