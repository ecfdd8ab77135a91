package proxy

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// dial connects to t within min(timeout, ConnectTimeout), completing the TLS
// handshake for https targets. Errors are wrapped in *connectError.
func (t *target) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > t.connectTimeout {
		timeout = t.connectTimeout
	}
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, &connectError{err: err}
	}
	if t.tlsConfig == nil {
		return conn, nil
	}
	tc := tls.Client(conn, t.tlsConfig)
	if err := tc.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return nil, &connectError{err: err}
	}
	if err := tc.Handshake(); err != nil {
		_ = conn.Close()
		return nil, &connectError{err: err}
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		_ = conn.Close()
		return nil, &connectError{err: err}
	}
	return tc, nil
}

// dialFunc returns the HostClient dial function for t, which also feeds the
// passive ejection bookkeeping.
func (u *targetSet) dialFunc(t *target) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		conn, err := t.dial(addr, timeout)
		if err != nil {
			u.connectFailed(t, err)
			return nil, err
		}
		u.connectSucceeded(t)
		return conn, nil
	}
}
