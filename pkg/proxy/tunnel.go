package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tunnelBufferSize is the size of the pooled copy buffers of tunnels.
const tunnelBufferSize = 16 << 10

// tunnelBuffers holds the copy buffers. A tunnel direction takes one only
// once its source has bytes to read and gives it back after writing them,
// so idle tunnels hold none (where the platform can wait for readability
// without a read; see waitReadable).
var tunnelBuffers = sync.Pool{New: func() any {
	b := make([]byte, tunnelBufferSize)
	return &b
}}

// ErrTunnelIdle ends a tunnel that carried no byte in either direction for
// its idle timeout.
var ErrTunnelIdle = errors.New("proxy: tunnel idle timeout")

// ErrTunnelClosed ends a tunnel closed by Tunnel.Close (shutdown).
var ErrTunnelClosed = errors.New("proxy: tunnel closed")

// Tunnel copies bytes both ways between a client connection and an upstream
// connection that switched protocols, until both sides have closed, one
// fails, the tunnel is idle for its timeout, or Close is called. It knows
// nothing of WebSocket framing: messages of any size pass through a fixed
// buffer.
type Tunnel struct {
	client net.Conn
	up     *Upgraded
	idle   time.Duration
	// early holds bytes the client sent behind its handshake.
	early []byte

	// last is the unix nanosecond time bytes last moved either way.
	last atomic.Int64
	// in counts client to upstream bytes, out upstream to client bytes.
	in, out atomic.Int64

	closed    atomic.Bool
	closeOnce sync.Once
	// cause is the error that ended the tunnel, the first of its two
	// directions to fail (the other then fails on the closed connection).
	causeOnce sync.Once
	cause     error
}

// NewTunnel pairs the client connection with the upstream connection up;
// idle must be positive. client may be the connection a fasthttp hijack
// handler gets: the tunnel then takes the socket underneath, with the bytes
// fasthttp had read ahead, so the server's read buffer is not held for the
// tunnel's lifetime (the server must run with KeepHijackedConns, and the
// handler may return once Run is started elsewhere).
func NewTunnel(client net.Conn, up *Upgraded, idle time.Duration) (*Tunnel, error) {
	raw, early, err := unwrapHijacked(client)
	if err != nil {
		return nil, err
	}
	tn := &Tunnel{client: raw, up: up, idle: idle, early: early}
	tn.touch()
	return tn, nil
}

// unwrapHijacked returns the socket under a fasthttp hijacked connection
// and the bytes its buffered reader holds. A read with a deadline in the
// past returns what is buffered and fails without touching the socket.
func unwrapHijacked(c net.Conn) (net.Conn, []byte, error) {
	uc, ok := c.(interface{ UnsafeConn() net.Conn })
	if !ok {
		return c, nil, nil
	}
	raw := uc.UnsafeConn()
	if err := raw.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return nil, nil, err
	}
	var (
		early []byte
		b     [512]byte
	)
	for {
		n, err := c.Read(b[:])
		early = append(early, b[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	if err := raw.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	return raw, early, nil
}

// Run copies until the tunnel ends, then closes both connections. It
// returns why the tunnel ended: nil when both sides closed in order,
// ErrTunnelIdle, ErrTunnelClosed, or the first copy error. The upstream
// half runs on a goroutine of its own; Run returns after it ended.
func (tn *Tunnel) Run() error {
	if len(tn.early) > 0 {
		n, err := tn.up.conn.Write(tn.early)
		tn.in.Add(int64(n))
		tn.early = nil
		if err != nil {
			tn.shut()
			tn.up.release()
			return tn.reason(err)
		}
	}
	if len(tn.up.early) > 0 {
		n, err := tn.client.Write(tn.up.early)
		tn.out.Add(int64(n))
		tn.up.early = nil
		if err != nil {
			tn.shut()
			tn.up.release()
			return tn.reason(err)
		}
	}
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		if err := tn.pump(tn.client, tn.up.conn, &tn.out); err != nil {
			tn.fail(err)
		}
	}()
	if err := tn.pump(tn.up.conn, tn.client, &tn.in); err != nil {
		tn.fail(err)
	}
	<-upDone
	tn.shut()
	tn.up.release()
	return tn.reason(tn.cause)
}

// fail records the first error that ended the tunnel and closes both
// connections, which stops the other direction at once.
func (tn *Tunnel) fail(err error) {
	tn.causeOnce.Do(func() { tn.cause = err })
	tn.shut()
}

// reason maps the error that ended a tunnel.
func (tn *Tunnel) reason(err error) error {
	if tn.closed.Load() && !errors.Is(err, ErrTunnelIdle) {
		return ErrTunnelClosed
	}
	return err
}

// Bytes returns the bytes copied so far: client to upstream (in) and
// upstream to client (out).
func (tn *Tunnel) Bytes() (in, out int64) { return tn.in.Load(), tn.out.Load() }

// Close ends the tunnel: both connections are closed and Run returns
// ErrTunnelClosed. It is safe to call at any time and more than once.
func (tn *Tunnel) Close() {
	tn.closed.Store(true)
	tn.shut()
}

// shut closes both connections, once.
func (tn *Tunnel) shut() {
	tn.closeOnce.Do(func() {
		_ = tn.client.Close()
		_ = tn.up.conn.Close()
	})
}

func (tn *Tunnel) touch() { tn.last.Store(time.Now().UnixNano()) }

// pump copies src to dst until src ends. An orderly end of src (EOF) is
// passed on as a half-close of dst, so the other direction keeps running
// until its own end; any error is returned as is.
func (tn *Tunnel) pump(dst, src net.Conn, count *atomic.Int64) error {
	if err := src.SetReadDeadline(tn.deadline()); err != nil {
		return err
	}
	for {
		if err := waitReadable(src); err != nil {
			if tn.stillActive(err, src) {
				continue
			}
			return tn.idleErr(err)
		}
		bp := tunnelBuffers.Get().(*[]byte)
		n, rerr := src.Read(*bp)
		if n > 0 {
			tn.touch()
			werr := dst.SetWriteDeadline(time.Now().Add(tn.idle))
			if werr == nil {
				_, werr = dst.Write((*bp)[:n])
			}
			count.Add(int64(n))
			if werr != nil {
				tunnelBuffers.Put(bp)
				return werr
			}
		}
		tunnelBuffers.Put(bp)
		switch {
		case rerr == nil:
		case rerr == io.EOF:
			closeWrite(dst)
			return nil
		case tn.stillActive(rerr, src):
		default:
			return tn.idleErr(rerr)
		}
	}
}

// deadline is the read deadline that ends an idle tunnel.
func (tn *Tunnel) deadline() time.Time {
	return time.Unix(0, tn.last.Load()).Add(tn.idle)
}

// stillActive reports whether a read deadline fired while the other
// direction kept the tunnel busy; it then moves the deadline on.
func (tn *Tunnel) stillActive(err error, src net.Conn) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || tn.closed.Load() {
		return false
	}
	d := tn.deadline()
	if !time.Now().Before(d) {
		return false
	}
	return src.SetReadDeadline(d) == nil
}

// idleErr turns the deadline error of an idle tunnel into ErrTunnelIdle.
func (tn *Tunnel) idleErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && !tn.closed.Load() {
		return ErrTunnelIdle
	}
	return err
}

// closeWrite half-closes c when it can (TCP, TLS), else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
