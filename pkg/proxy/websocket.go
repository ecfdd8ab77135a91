package proxy

import (
	"bufio"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	strUpgrade   = []byte(fasthttp.HeaderUpgrade)
	strWebSocket = []byte("websocket")

	errNotWebSocket = errors.New("upstream switched to a protocol other than websocket")
)

// IsWebSocketUpgrade reports whether a request asks to switch to the
// WebSocket protocol: one of the comma-separated tokens of its Upgrade
// header is "websocket", in any case. It must be called before
// PrepareRequest, which removes Upgrade as a hop-by-hop header. It does not
// allocate.
func IsWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	for _, v := range h.PeekAll(fasthttp.HeaderUpgrade) {
		if hasToken(v, strWebSocket) {
			return true
		}
	}
	return false
}

// IsWebSocketHandshake reports whether a request that IsWebSocketUpgrade
// is a handshake the gateway can forward (RFC 6455 §4.1): a GET whose
// Connection header lists "upgrade". Like IsWebSocketUpgrade, it must be
// called before PrepareRequest.
func IsWebSocketHandshake(h *fasthttp.RequestHeader) bool {
	return h.IsGet() && h.ConnectionUpgrade()
}

// PrepareUpgrade puts back the two hop-by-hop headers a WebSocket handshake
// needs on its way upstream, "Connection: Upgrade" and "Upgrade: websocket",
// on a request PrepareRequest has cleaned. The Sec-WebSocket-* headers are
// end-to-end and were kept.
func PrepareUpgrade(req *fasthttp.Request) {
	req.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	req.Header.SetCanonical(strUpgrade, strWebSocket)
}

// hasToken reports whether the comma-separated list v holds tok, compared
// case-insensitively.
func hasToken(v, tok []byte) bool {
	for len(v) > 0 {
		var t []byte
		t, v = nextToken(v)
		if equalFold(t, tok) {
			return true
		}
	}
	return false
}

// Upgraded is an upstream connection that switched to the WebSocket
// protocol: what Upgrade returns after a 101 answer. It is handed to
// NewTunnel, which owns it from then on.
type Upgraded struct {
	conn net.Conn
	// early holds bytes the upstream sent right behind its 101 answer,
	// already read with the header; they go to the client first.
	early []byte
	u     *Upstream
	t     *target
}

// Close closes the upstream connection without tunnelling it.
func (up *Upgraded) Close() error {
	up.release()
	return up.conn.Close()
}

// release ends the connection's count in the least_conn balancing.
func (up *Upgraded) release() {
	if up.u != nil && up.u.leastConn {
		up.t.inflight.Add(-1)
	}
	up.u = nil
}

// Upgrade sends a WebSocket handshake to a target and reads the answer into
// resp. The target is picked as for Do (balancing, health, ejection) and
// connect failures are retried on another target as for any GET, up to
// Config.Retries, when RetryOn lists RetryConnect and the retry budget has
// room (a 5xx answer to a handshake is never retried). Each handshake dials a connection of its own, within the
// target's connect timeout: a tunnel is never taken from or returned to the
// keep-alive pool, and does not count in MaxConnsPerTarget. timeout bounds
// the exchange up to the end of the answer's header; 0 means the upstream's
// Timeout.
//
// When the target answers 101 Switching Protocols with "Upgrade:
// websocket", Upgrade returns the connection; resp holds the 101 header,
// to be cleaned with CleanUpgradeResponse. Any other answer is read whole
// into resp (within the response body limit), the connection is closed and
// the returned *Upgraded is nil: the caller proxies it as a normal
// response. Errors are those of Do. With least_conn balancing, the tunnel
// counts as a request in flight on its target until it is closed.
func (u *Upstream) Upgrade(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) (*Upgraded, error) {
	return u.UpgradeObserved(req, resp, timeout, nil)
}

// UpgradeObserved is Upgrade, telling obs (when not nil) about each attempt.
func (u *Upstream) UpgradeObserved(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, obs AttemptObserver) (*Upgraded, error) {
	if timeout <= 0 {
		timeout = u.timeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if u.retries > 0 {
		u.budget.request(second(start))
	}
	var (
		tried   uint64
		last    *target
		lastErr error
	)
	c := u.rr.Add(1) - 1
	for attempt := 0; ; attempt++ {
		t := u.pick(tried, c+uint64(attempt))
		if t == nil {
			resp.Reset()
			if lastErr != nil {
				return nil, u.failure(last, lastErr, deadline)
			}
			return nil, &UpstreamError{Upstream: u.name, Kind: ErrUnavailable}
		}
		tried |= t.bit
		if u.leastConn {
			t.inflight.Add(1)
		}
		if obs != nil {
			obs.AttemptStart(req, u.attempt(t, attempt, ClientWebSocket))
		}
		up, err := u.handshake(t, req, resp, deadline)
		if up == nil && u.leastConn {
			t.inflight.Add(-1)
		}
		u.metrics.ObserveAttempt(resp.StatusCode(), err != nil)
		if obs != nil {
			obs.AttemptEnd(resp, err)
		}
		if err == nil {
			return up, nil
		}
		last, lastErr = t, err
		// Only connect failures are retried: once the handshake was sent,
		// a tunnel is never opened twice.
		if !u.retryConnect || !isConnectError(err) || !u.mayRetry(attempt, deadline) {
			resp.Reset()
			return nil, u.failure(t, err, deadline)
		}
	}
}

// handshake dials t, sends req and reads the answer.
func (u *Upstream) handshake(t *target, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) (*Upgraded, error) {
	remaining := time.Until(deadline)
	if remaining <= 0 {
		return nil, fasthttp.ErrTimeout
	}
	conn, err := u.dialFunc(t)(t.addr, remaining)
	if err != nil {
		return nil, err
	}
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return nil, err
	}
	uri := req.URI()
	uri.DisablePathNormalizing = true
	uri.SetSchemeBytes(t.scheme)
	uri.SetHostBytes(t.host)
	req.Header.SetProtocolBytes(strHTTP11)
	req.Header.SetNoDefaultContentType(true)

	bw := t.hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	t.hc.ReleaseWriter(bw)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}

	resp.Reset()
	br := t.hc.AcquireReader(conn)
	switched, err := readUpgradeHeader(resp, br)
	if smallBuffer(err) {
		br = growReader(t.hc, br, conn)
		switched, err = readUpgradeHeader(resp, br)
	}
	defer t.hc.ReleaseReader(br)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if !switched {
		// Refused (401, 404, 426, ...): an ordinary response. The
		// connection was dialled for this handshake only.
		if code := resp.StatusCode(); code != fasthttp.StatusNoContent && code != fasthttp.StatusNotModified {
			err = resp.ReadBody(br, u.maxBody)
		}
		_ = conn.Close()
		return nil, err
	}
	if !hasToken(resp.Header.PeekBytes(strUpgrade), strWebSocket) {
		_ = conn.Close()
		return nil, errNotWebSocket
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	up := &Upgraded{conn: conn, u: u, t: t}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		up.early = append([]byte(nil), b...)
	}
	return up, nil
}

// readUpgradeHeader reads the final answer to a handshake into resp,
// skipping informational responses other than 101. switched reports a 101.
func readUpgradeHeader(resp *fasthttp.Response, br *bufio.Reader) (switched bool, err error) {
	for range maxInterim {
		if err := resp.Header.Read(br); err != nil {
			return false, err
		}
		code := resp.StatusCode()
		switch {
		case code == fasthttp.StatusSwitchingProtocols:
			return true, nil
		case code >= 100 && code < 200:
			continue
		}
		return false, nil
	}
	return false, errTooManyInterim
}

// CleanUpgradeResponse is CleanResponse for a 101 answer to a WebSocket
// handshake: the hop-by-hop headers go, except the "Connection: Upgrade"
// and "Upgrade: websocket" the switch is made of. Sec-WebSocket-Accept,
// -Protocol and -Extensions pass unchanged.
func CleanUpgradeResponse(resp *fasthttp.Response) {
	CleanResponse(resp)
	resp.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	resp.Header.SetCanonical(strUpgrade, strWebSocket)
}
