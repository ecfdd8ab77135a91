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

// ErrTunnelClosed ends a tunnel closed by Tunnel.Shutdown or Tunnel.Close.
var ErrTunnelClosed = errors.New("proxy: tunnel closed")

// goingAwayTimeout bounds each step of Shutdown's goodbye to the client:
// writing the close frame, and waiting for the client's answer.
const goingAwayTimeout = time.Second

// closeGoingAway is a server's WebSocket close frame (RFC 6455 §5.5.1,
// unmasked) with status 1001, "going away".
var closeGoingAway = []byte{0x88, 0x02, 0x03, 0xe9}

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
	// frames follows the frame boundaries of the upstream's stream, so
	// Shutdown can add a close frame without cutting one in two. Only the
	// upstream-to-client direction touches it.
	frames frameTracker

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
		tn.frames.feed(tn.up.early[:n])
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
		err := tn.pump(tn.client, tn.up.conn, &tn.out, &tn.frames)
		switch {
		case err != nil && tn.closed.Load() && tn.goingAway():
			// The client's half ends on its answer or its deadline.
			tn.causeOnce.Do(func() { tn.cause = ErrTunnelClosed })
		case err != nil:
			tn.fail(err)
		}
	}()
	if err := tn.pump(tn.up.conn, tn.client, &tn.in, nil); err != nil {
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

// Shutdown ends the tunnel politely: the upstream connection is closed,
// and the client gets a WebSocket close frame with status 1001 (going
// away) when the upstream's stream is between two frames and has not sent
// a close frame itself; its connection is closed once it answers, or after
// about a second either way. Run then returns ErrTunnelClosed. It is safe
// to call at any time and more than once; Close cuts it short.
func (tn *Tunnel) Shutdown() {
	tn.closed.Store(true)
	// A client that does not read must not hold the upstream half's write.
	_ = tn.client.SetWriteDeadline(time.Now().Add(goingAwayTimeout))
	_ = tn.up.conn.Close()
}

// Close ends the tunnel at once: both connections are closed and Run
// returns ErrTunnelClosed. It is safe to call at any time and more than
// once.
func (tn *Tunnel) Close() {
	tn.closed.Store(true)
	tn.shut()
}

// goingAway sends the client the close frame of Shutdown, half-closes its
// connection and gives it goingAwayTimeout to answer. It reports whether
// the frame was sent.
func (tn *Tunnel) goingAway() bool {
	if !tn.frames.atBoundary() || tn.frames.sawClose {
		return false
	}
	if err := tn.client.SetWriteDeadline(time.Now().Add(goingAwayTimeout)); err != nil {
		return false
	}
	if _, err := tn.client.Write(closeGoingAway); err != nil {
		return false
	}
	closeWrite(tn.client)
	return tn.client.SetReadDeadline(time.Now().Add(goingAwayTimeout)) == nil
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
func (tn *Tunnel) pump(dst, src net.Conn, count *atomic.Int64, frames *frameTracker) error {
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
			if werr == nil && tn.closed.Load() {
				// Shutdown set a short deadline, perhaps just before the
				// line above replaced it.
				werr = dst.SetWriteDeadline(time.Now().Add(goingAwayTimeout))
			}
			nw := 0
			if werr == nil {
				nw, werr = dst.Write((*bp)[:n])
			}
			if frames != nil {
				frames.feed((*bp)[:nw])
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

// frameTracker follows the frame boundaries of a WebSocket byte stream
// from its headers (RFC 6455 §5.2), skipping payloads whole: enough to know
// whether a frame may be added to the stream, never to decode it.
type frameTracker struct {
	hdr  [14]byte // the header being read
	hn   int      // header bytes read so far
	left uint64   // payload bytes left in the current frame
	// sawClose is set once a close frame (opcode 8) went by.
	sawClose bool
}

// feed advances the tracker over p, the next bytes of the stream.
func (f *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			n := uint64(len(p))
			if n > f.left {
				n = f.left
			}
			f.left -= n
			p = p[n:]
			continue
		}
		f.hdr[f.hn] = p[0]
		f.hn++
		p = p[1:]
		if need := f.headerLen(); need > 0 && f.hn == need {
			f.left = f.payloadLen()
			if f.hdr[0]&0x0f == 0x8 {
				f.sawClose = true
			}
			f.hn = 0
		}
	}
}

// atBoundary reports whether the stream so far ends between two frames.
func (f *frameTracker) atBoundary() bool { return f.hn == 0 && f.left == 0 }

// headerLen returns the length of the header being read, or 0 while its
// first two bytes are not in.
func (f *frameTracker) headerLen() int {
	if f.hn < 2 {
		return 0
	}
	n := 2
	switch f.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if f.hdr[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// payloadLen decodes the payload length of a complete header.
func (f *frameTracker) payloadLen() uint64 {
	switch l := f.hdr[1] & 0x7f; l {
	case 126:
		return uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
	case 127:
		var n uint64
		for _, b := range f.hdr[2:10] {
			n = n<<8 | uint64(b)
		}
		return n
	default:
		return uint64(l)
	}
}
