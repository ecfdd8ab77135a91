package gateway

import (
	"errors"
	"io"
	"sync"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/authserver"
	"github.com/valyala/fasthttp"
)

// maxPooledBody is the largest body buffer kept for reuse, room for a body
// at the default threshold (or builtin:auth's limit) and the byte that
// shows it goes on: a threshold set higher must not leave large buffers
// pinned in the pool after a burst of large requests.
const maxPooledBody = 64<<10 + 1

// errBodyTooLarge marks a streamed body that grew past max_request_body_bytes.
var errBodyTooLarge = errors.New("request body larger than max_request_body_bytes")

// clientBody is a request body as the gateway holds it, when the server
// reads bodies as streams (server.stream_request_body_threshold below
// max_request_body_bytes). A body up to the threshold is read whole into
// buf and set as the request's body, so everything downstream sees a
// buffered request as before. A larger one streams: clientBody is then the
// request's body stream, reading first the bytes already in buf (the start
// of a chunked body) and then the client connection, enforcing the size
// limit and recording why the client's side failed, so forward can tell a
// client at fault from an upstream at fault.
type clientBody struct {
	buf []byte
	off int       // stream: bytes of buf already returned
	r   io.Reader // the client connection's body stream
	n   int64     // body bytes taken from the client so far
	cl  int64     // Content-Length, -1 for chunked
	max int64
	err error // the client side's failure, sticky

	// aux holds a streamed body read whole after all, for builtin:auth.
	aux []byte
}

var bodyPool = sync.Pool{New: func() any { return new(clientBody) }}

// Read implements io.Reader for a streamed body.
func (b *clientBody) Read(p []byte) (int, error) {
	if b.off < len(b.buf) {
		n := copy(p, b.buf[b.off:])
		b.off += n
		return n, nil
	}
	return b.readClient(p)
}

// SupportsBodyWriteTo tells fasthttp to copy the body with its own pooled
// buffer rather than through WriteTo (fasthttp.BodyWriterTo): a plain
// io.Reader would be copied by net.TCPConn.ReadFrom, whose fallback
// allocates a buffer per request.
func (b *clientBody) SupportsBodyWriteTo() bool { return false }

// WriteTo implements io.WriterTo, with a pooled buffer.
func (b *clientBody) WriteTo(w io.Writer) (int64, error) {
	buf := copyBufs.Get().(*[copyBufSize]byte)
	defer copyBufs.Put(buf)
	var total int64
	for {
		n, err := b.Read(buf[:])
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

const copyBufSize = 16 << 10

var copyBufs = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// readClient reads body bytes from the client connection.
func (b *clientBody) readClient(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.max:
		n -= int(b.n - b.max)
		b.n = b.max
		err = errBodyTooLarge
	case err == io.EOF && b.cl >= 0 && b.n < b.cl:
		// The client closed before sending all it announced.
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// fill reads the client body into buf until it ends or buf holds more than
// limit bytes. It reports whether the body ended.
func (b *clientBody) fill(limit int) (complete bool, err error) {
	b.buf = b.buf[:0]
	for len(b.buf) <= limit {
		if len(b.buf) == cap(b.buf) {
			b.buf = grow(b.buf, limit+1)
		}
		n, err := b.readClient(b.buf[len(b.buf):min(cap(b.buf), limit+1)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// release returns b to the pool; the request must no longer refer to it.
func (b *clientBody) release() {
	buf, aux := b.buf[:0], b.aux[:0]
	if cap(buf) > maxPooledBody {
		buf = nil
	}
	if cap(aux) > maxPooledBody {
		aux = nil
	}
	*b = clientBody{buf: buf, aux: aux}
	bodyPool.Put(b)
}

// prepareBody takes over the body fasthttp left streaming on the request:
// a body up to the threshold is read whole, a larger one becomes a
// clientBody stream. It answers the request itself (and returns ok false)
// when the body is over max_request_body_bytes by its Content-Length or
// the client failed to send it. The returned clientBody, when not nil, must
// be released after the request.
func (g *Gateway) prepareBody(ctx *fasthttp.RequestCtx) (b *clientBody, ok bool) {
	req := &ctx.Request
	cl := req.Header.ContentLength()
	switch {
	case cl == 0:
		// No body (most GETs): drop the empty stream, so that the request
		// is a plain buffered one (which the upstream may replay).
		req.ResetBody()
		return nil, true
	case int64(cl) > g.maxBody:
		writeBodyTooLarge(ctx)
		return nil, false
	}
	b = bodyPool.Get().(*clientBody)
	b.r, b.cl, b.max = req.BodyStream(), int64(cl), g.maxBody
	switch {
	case cl > 0 && cl <= g.bodyThreshold:
		if cap(b.buf) < cl {
			b.buf = make([]byte, cl)
		}
		b.buf = b.buf[:cl]
		if err := b.readFull(b.buf); err != nil {
			writeClientBodyError(ctx, err)
			b.release()
			return nil, false
		}
		req.SetBodyRaw(b.buf)
		return b, true
	case cl < 0:
		complete, err := b.fill(g.bodyThreshold)
		if err != nil {
			writeClientBodyError(ctx, err)
			b.release()
			return nil, false
		}
		if complete {
			req.SetBodyRaw(b.buf)
			req.Header.SetContentLength(len(b.buf))
			return b, true
		}
		// Stream: what fill read is the start of the stream.
		req.SetBodyStream(b, -1)
		return b, true
	}
	req.SetBodyStream(b, cl)
	return b, true
}

// bufferForAuth reads a streamed body whole for builtin:auth, which parses
// JSON bodies of at most authserver.MaxBodyBytes. It answers 413 (and
// returns false) for a larger body.
func (b *clientBody) bufferForAuth(ctx *fasthttp.RequestCtx) bool {
	b.aux = b.aux[:0]
	for len(b.aux) <= authserver.MaxBodyBytes {
		if len(b.aux) == cap(b.aux) {
			b.aux = grow(b.aux, authserver.MaxBodyBytes+1)
		}
		n, err := b.Read(b.aux[len(b.aux):min(cap(b.aux), authserver.MaxBodyBytes+1)])
		b.aux = b.aux[:len(b.aux)+n]
		if err == io.EOF {
			ctx.Request.SetBodyRaw(b.aux)
			ctx.Request.Header.SetContentLength(len(b.aux))
			return true
		}
		if err != nil {
			writeClientBodyError(ctx, err)
			return false
		}
	}
	// Read and discard the rest (bounded by max_request_body_bytes and
	// read_timeout like any body) so the connection closes with nothing
	// unread: a close with unread bytes sends a TCP reset, which can
	// destroy the 413 before the client reads it.
	for {
		_, err := b.Read(b.aux[:cap(b.aux)])
		if err == io.EOF {
			break
		}
		if err != nil {
			writeClientBodyError(ctx, err)
			return false
		}
	}
	apierror.Write(ctx, fasthttp.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "the request body must be at most 64 KiB")
	ctx.SetConnectionClose()
	return false
}

func writeBodyTooLarge(ctx *fasthttp.RequestCtx) {
	apierror.Write(ctx, fasthttp.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "request body is larger than the gateway accepts")
	ctx.SetConnectionClose()
}

// writeClientBodyError answers a request whose body the client did not
// deliver: too large (413), too slow (408) or cut short (400). The
// connection is closed: the rest of the body, if any, cannot be skipped.
func writeClientBodyError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		writeBodyTooLarge(ctx)
		return
	case isTimeout(err):
		apierror.Write(ctx, fasthttp.StatusRequestTimeout, apierror.CodeRequestTimeout, "the request was not received in time")
	default:
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "the request body was cut short or malformed")
	}
	ctx.SetConnectionClose()
}

// grow returns buf with more capacity, doubling it (from 4KiB) up to limit.
func grow(buf []byte, limit int) []byte {
	n := min(max(2*cap(buf), 4<<10), max(limit, cap(buf)+1))
	out := make([]byte, len(buf), n)
	copy(out, buf)
	return out
}

// readFull reads exactly len(dst) body bytes from the client connection.
func (b *clientBody) readFull(dst []byte) error {
	for off := 0; off < len(dst); {
		n, err := b.readClient(dst[off:])
		off += n
		if off == len(dst) {
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}
