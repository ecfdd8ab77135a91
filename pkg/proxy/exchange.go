package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// readBufferSize is the read buffer an exchange starts with. A response
	// header block that does not fit moves to a maxResponseHeaderBytes one
	// (growReader); most fit, and an exchange in flight holds 4 KiB.
	readBufferSize = 4 << 10

	// maxResponseHeaderBytes caps the size of the upstream response header
	// block: a larger one is a bad gateway.
	maxResponseHeaderBytes = 8 << 10

	// bufferLimit is the largest response body read whole before Do returns;
	// larger bodies are streamed.
	bufferLimit = 64 << 10

	// probeIdle is how long a pooled connection must have been idle before it
	// is checked for a close by the upstream before reuse.
	probeIdle = time.Second

	// maxReplays bounds how often an idempotent request is sent again after a
	// reused connection turned out to be closed by the upstream.
	maxReplays = 3

	// maxInterim bounds the 1xx responses skipped before the final one.
	maxInterim = 32

	// maxTrailerBytes bounds the chunked trailer section that is discarded.
	maxTrailerBytes = 16 << 10
)

var (
	strHTTP11 = []byte("HTTP/1.1")

	errUpgrade        = errors.New("upstream switched protocols")
	errTooManyInterim = errors.New("too many informational responses")
	errChunkSize      = errors.New("malformed chunk size")
	errChunkEnd       = errors.New("malformed chunk terminator")
	errTrailer        = errors.New("trailer section too large")
)

// pooledConn is the method set of the connection handle that
// fasthttp.HostClient.AcquireConn returns. The handle's type is unexported,
// so the code holding it is generic over it and instantiated by inference.
type pooledConn interface {
	Conn() net.Conn
	LastUseTime() time.Time
}

// connPool drives HostClient's exported connection pool methods.
type connPool[C pooledConn] struct {
	acquire func(*fasthttp.HostClient, time.Duration, bool) (C, error)
	release func(*fasthttp.HostClient, C)
	discard func(*fasthttp.HostClient, C)
	readers sync.Pool // *bodyReader[C]
}

func newConnPool[C pooledConn](
	acquire func(*fasthttp.HostClient, time.Duration, bool) (C, error),
	release, discard func(*fasthttp.HostClient, C),
) *connPool[C] {
	return &connPool[C]{acquire: acquire, release: release, discard: discard}
}

// hostConns uses HostClient's pool: AcquireConn dials through the target's
// DialTimeout when no idle connection is left, within MaxConns.
var hostConns = newConnPool(
	(*fasthttp.HostClient).AcquireConn,
	(*fasthttp.HostClient).ReleaseConn,
	(*fasthttp.HostClient).CloseConn,
)

// exchange sends req to t and reads the response into resp. It does what
// HostClient.Do does, with three differences: the error tells whether the
// request left (connect errors come back as *connectError from the dial), a
// large response body is streamed while a small one is buffered, and a pooled
// connection the upstream has closed is detected or replayed safely.
func (p *connPool[C]) exchange(u *Upstream, t *target, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	uri := req.URI()
	uri.DisablePathNormalizing = true
	uri.SetSchemeBytes(t.scheme)
	uri.SetHostBytes(t.host)
	req.Header.SetProtocolBytes(strHTTP11)
	req.Header.SetNoDefaultContentType(true)
	isHead := req.Header.IsHead()
	replayable := isIdempotent(&req.Header) && !req.IsBodyStream()

	for replays := 0; ; {
		// One clock read serves the remaining time and the idle check (a
		// connection acquired after a wait was released during it, so
		// reading the clock before the wait cannot miss a long idle).
		now := time.Now()
		remaining := deadline.Sub(now)
		if remaining <= 0 {
			return fasthttp.ErrTimeout
		}
		cc, err := p.acquire(t.hc, remaining, false)
		if err != nil {
			return err
		}
		conn := cc.Conn()
		// The deadline goes first: a pooled connection still carries the
		// previous exchange's, which may have passed and would fail the probe.
		if err = conn.SetDeadline(deadline); err != nil {
			p.discard(t.hc, cc)
			return err
		}
		lastUse := cc.LastUseTime()
		reused := !lastUse.IsZero()
		if reused && now.Sub(lastUse) >= probeIdle && !connAlive(conn) {
			// Closed while idle; nothing was sent, so any method may go on.
			p.discard(t.hc, cc)
			continue
		}

		bw := t.hc.AcquireWriter(conn)
		err = req.Write(bw)
		if err == nil {
			err = bw.Flush()
		}
		t.hc.ReleaseWriter(bw)
		if err != nil {
			p.discard(t.hc, cc)
			if reused && replayable && replays < maxReplays {
				replays++
				continue
			}
			return err
		}

		resp.Reset()
		br := t.hc.AcquireReader(conn)
		err = readHeader(resp, br)
		if smallBuffer(err) {
			br = growReader(t.hc, br, conn)
			err = readHeader(resp, br)
		}
		if err != nil {
			t.hc.ReleaseReader(br)
			p.discard(t.hc, cc)
			// io.EOF: the connection closed before the first response byte,
			// the signature of an idle connection the upstream dropped just
			// as the request went out.
			if err == io.EOF && reused && replayable && replays < maxReplays {
				replays++
				continue
			}
			return tlsReadError(conn, err)
		}
		return p.readBody(u, t, cc, br, resp, isHead, req.Header.ConnectionClose())
	}
}

// readHeader reads the final response header, skipping 1xx responses.
func readHeader(resp *fasthttp.Response, br *bufio.Reader) error {
	for range maxInterim {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		code := resp.StatusCode()
		switch {
		case code == fasthttp.StatusSwitchingProtocols:
			return errUpgrade
		case code >= 100 && code < 200:
			continue
		}
		return nil
	}
	return errTooManyInterim
}

// readBody reads or streams the body of the response whose header resp
// holds, then releases the connection or hands it to the body stream.
// reqClose reports that the request asked for the connection to be closed.
func (p *connPool[C]) readBody(u *Upstream, t *target, cc C, br *bufio.Reader, resp *fasthttp.Response, isHead, reqClose bool) error {
	closeConn := reqClose || resp.ConnectionClose()
	code := resp.StatusCode()
	if isHead || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		if isHead {
			resp.SkipBody = true
		}
		p.done(t.hc, cc, br, closeConn)
		return nil
	}

	cl := resp.Header.ContentLength()
	if cl >= 0 {
		if u.maxBody > 0 && cl > u.maxBody {
			p.done(t.hc, cc, br, true)
			return fasthttp.ErrBodyTooLarge
		}
		if cl <= bufferLimit {
			if err := resp.ReadBody(br, u.maxBody); err != nil {
				p.done(t.hc, cc, br, true)
				return err
			}
			p.done(t.hc, cc, br, closeConn)
			return nil
		}
	}

	r := p.acquireReader(t.hc, cc, br, closeConn, cl, u.maxBody)
	if cl >= 0 {
		resp.SetBodyStream(r, cl)
		return nil
	}
	// Unknown length: buffer what ends within bufferLimit, stream the rest.
	complete, err := r.prefill()
	if err != nil {
		r.Close()
		return err
	}
	if !complete {
		resp.SetBodyStream(r, -1)
		return nil
	}
	resp.SetBody(r.pre)
	resp.Header.SetContentLength(len(r.pre))
	r.Close()
	return nil
}

// done returns the reader to the pool and the connection to its HostClient,
// closing the connection when it cannot be reused.
func (p *connPool[C]) done(hc *fasthttp.HostClient, cc C, br *bufio.Reader, closeConn bool) {
	hc.ReleaseReader(br)
	if closeConn {
		p.discard(hc, cc)
	} else {
		p.release(hc, cc)
	}
}

// Body framing modes of a bodyReader.
const (
	frameFixed   = iota // Content-Length
	frameChunked        // Transfer-Encoding: chunked
	frameClose          // until the upstream closes the connection
)

// bodyReader reads a response body from an upstream connection. It is the
// body stream of a streamed response, and releases the connection on Close:
// back to the pool when the body was read to its end, closed otherwise.
type bodyReader[C pooledConn] struct {
	pool      *connPool[C]
	hc        *fasthttp.HostClient
	cc        C
	br        *bufio.Reader
	closeConn bool

	frame     int
	remaining int64 // fixed: body bytes left; chunked: bytes left in the chunk
	needCRLF  bool  // chunked: a chunk's data ended, its CRLF is next
	total     int64 // body bytes returned so far
	max       int64 // body size limit, 0 for none
	eof       bool  // the body was read to its end
	err       error // sticky read error

	pre    []byte // body bytes read ahead by prefill
	preOff int

	// size, when set, receives the bytes handed out by Read at Close.
	size SizeObserver
}

func (p *connPool[C]) acquireReader(hc *fasthttp.HostClient, cc C, br *bufio.Reader, closeConn bool, contentLength, maxBody int) *bodyReader[C] {
	r, _ := p.readers.Get().(*bodyReader[C])
	if r == nil {
		r = &bodyReader[C]{}
	}
	r.pool, r.hc, r.cc, r.br, r.closeConn = p, hc, cc, br, closeConn
	r.max = int64(maxBody)
	switch {
	case contentLength >= 0:
		r.frame = frameFixed
		r.remaining = int64(contentLength)
	case contentLength == -1:
		r.frame = frameChunked
	default:
		r.frame = frameClose
		r.closeConn = true
	}
	return r
}

func (r *bodyReader[C]) observeSize(o SizeObserver) { r.size = o }

// prefill reads the body ahead into r.pre, up to bufferLimit bytes. complete
// reports that the whole body fit.
func (r *bodyReader[C]) prefill() (complete bool, err error) {
	if cap(r.pre) < bufferLimit {
		r.pre = make([]byte, 0, bufferLimit)
	}
	r.pre = r.pre[:0]
	for len(r.pre) < cap(r.pre) {
		n, err := r.read(r.pre[len(r.pre):cap(r.pre)])
		r.pre = r.pre[:len(r.pre)+n]
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
	return false, nil
}

// Read implements io.Reader.
func (r *bodyReader[C]) Read(p []byte) (int, error) {
	if r.preOff < len(r.pre) {
		n := copy(p, r.pre[r.preOff:])
		r.preOff += n
		return n, nil
	}
	return r.read(p)
}

// read decodes body bytes from the connection, enforcing the size limit.
func (r *bodyReader[C]) read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n   int
		err error
	)
	switch r.frame {
	case frameFixed:
		n, err = r.readFixed(p)
	case frameChunked:
		n, err = r.readChunked(p)
	default:
		n, err = r.br.Read(p)
		if err == io.EOF {
			r.eof = true
		}
	}
	if r.max > 0 && r.total+int64(n) > r.max {
		n = int(r.max - r.total)
		err = fasthttp.ErrBodyTooLarge
	}
	r.total += int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (r *bodyReader[C]) readFixed(p []byte) (int, error) {
	if r.remaining == 0 {
		r.eof = true
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.br.Read(p)
	r.remaining -= int64(n)
	if r.remaining == 0 {
		r.eof = true
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *bodyReader[C]) readChunked(p []byte) (int, error) {
	if r.remaining == 0 {
		if r.needCRLF {
			if err := r.readCRLF(); err != nil {
				return 0, err
			}
			r.needCRLF = false
		}
		size, err := r.readChunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := r.skipTrailer(); err != nil {
				return 0, err
			}
			r.eof = true
			return 0, io.EOF
		}
		r.remaining = size
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.br.Read(p)
	r.remaining -= int64(n)
	if r.remaining == 0 {
		r.needCRLF = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunkSize parses a chunk-size line, ignoring chunk extensions.
func (r *bodyReader[C]) readChunkSize() (int64, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		if err == bufio.ErrBufferFull {
			return 0, errChunkSize
		}
		return 0, err
	}
	line = line[:len(line)-1]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, errChunkSize
	}
	line = line[:len(line)-1]
	var size int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			if digits == 0 {
				return 0, errChunkSize
			}
			return size, nil
		default:
			return 0, errChunkSize
		}
		if digits == 15 {
			return 0, errChunkSize
		}
		size = size<<4 | int64(d)
		digits++
	}
	if digits == 0 {
		return 0, errChunkSize
	}
	return size, nil
}

func (r *bodyReader[C]) readCRLF() error {
	b, err := r.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkEnd
	}
	_, _ = r.br.Discard(2)
	return nil
}

// skipTrailer discards the trailer section after the last chunk.
func (r *bodyReader[C]) skipTrailer() error {
	seen := 0
	for {
		line, err := r.br.ReadSlice('\n')
		seen += len(line)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			if err == bufio.ErrBufferFull {
				return errTrailer
			}
			return err
		}
		if len(line) == 2 && line[0] == '\r' {
			return nil
		}
		if seen > maxTrailerBytes {
			return errTrailer
		}
	}
}

// Close releases the upstream connection, to the pool when the body was read
// to its end, and puts the reader back in its pool. The reader must not be
// used afterwards.
func (r *bodyReader[C]) Close() error {
	if r.size != nil {
		// Bytes read ahead by prefill but never handed out do not count.
		r.size.ObserveResponseSize(r.total - int64(len(r.pre)-r.preOff))
	}
	r.pool.done(r.hc, r.cc, r.br, r.closeConn || !r.eof || r.err != nil)
	var zero C
	p := r.pool
	pre := r.pre[:0]
	*r = bodyReader[C]{cc: zero, pre: pre}
	p.readers.Put(r)
	return nil
}

// SizeObserver receives the size of a response body once it is known.
type SizeObserver interface {
	ObserveResponseSize(n int64)
}

// ObserveBodySize arranges for o to receive the number of bytes of resp's
// streamed body that were read out of it (by the server writing it to the
// client), when the stream is closed: after the whole body was sent, or
// when the exchange ended early. It reports false, and does nothing, when
// resp has no body stream that an Upstream set.
func ObserveBodySize(resp *fasthttp.Response, o SizeObserver) bool {
	s, ok := resp.BodyStream().(interface{ observeSize(SizeObserver) })
	if !ok {
		return false
	}
	s.observeSize(o)
	return true
}
