package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// smallBuffer reports whether err is a response header block that did not
// fit in the reader it was read from.
func smallBuffer(err error) bool {
	if err == nil {
		return false
	}
	// Declared after the check: errors.As moves it to the heap, and an
	// exchange without an error must not allocate.
	var e *fasthttp.ErrSmallBuffer
	return errors.As(err, &e)
}

// growReader moves a response whose header block did not fit in br to a
// reader of maxResponseHeaderBytes, releasing br. The header parser only
// peeks until the block is complete, so br holds the block's first bytes,
// unread: they are copied and read again ahead of the connection's. The
// larger reader goes back to hc's pool when the exchange ends and serves
// later exchanges at its size, so an upstream that always sends large
// headers stops paying for the move.
//
// It allocates: a response header over readBufferSize is the exception.
func growReader(hc *fasthttp.HostClient, br *bufio.Reader, conn net.Conn) *bufio.Reader {
	b, _ := br.Peek(br.Buffered())
	pre := &prefixReader{pre: append([]byte(nil), b...), r: conn}
	hc.ReleaseReader(br)
	return bufio.NewReaderSize(pre, maxResponseHeaderBytes)
}

// prefixReader reads pre, then r. pre is smaller than the reader it feeds,
// whose first fill takes it whole.
type prefixReader struct {
	pre []byte
	r   io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.r.Read(b)
}
