package compress

import (
	"bytes"
	"sync"

	"github.com/gatewayd/gatewayd/internal/headerlist"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	gz "github.com/klauspost/compress/gzip"
	brrr "github.com/molecule-man/go-brrr"
	"github.com/valyala/fasthttp"
)

var (
	// Names in fasthttp's normalised form ("Etag"), as SetCanonical needs.
	hVary          = canonical(fasthttp.HeaderVary)
	hETag          = canonical(fasthttp.HeaderETag)
	hAcceptRanges  = canonical(fasthttp.HeaderAcceptRanges)
	hContentRange  = canonical(fasthttp.HeaderContentRange)
	hAcceptEnc     = canonical(fasthttp.HeaderAcceptEncoding)
	valueAcceptEnc = []byte("Accept-Encoding")
	valueBr        = []byte("br")
	valueGzip      = []byte("gzip")
	weakPrefix     = []byte("W/")
)

func canonical(name string) []byte { return fasthttp.AppendNormalizedHeaderKey(nil, name) }

// Handle implements plugins.Plugin; the work is done in OnResponse.
func (*Plugin) Handle(*fasthttp.RequestCtx) plugins.Verdict { return plugins.Next }

// OnResponse implements plugins.ResponseHook: it compresses the response
// (the upstream's or the gateway's own) when it is eligible and the client
// accepts an offered coding.
func (p *Plugin) OnResponse(ctx *fasthttp.RequestCtx) {
	resp := &ctx.Response
	h := &resp.Header
	switch status := resp.StatusCode(); {
	case status < 200, status == fasthttp.StatusNoContent, status == fasthttp.StatusPartialContent,
		status == fasthttp.StatusNotModified:
		return
	}
	if len(h.ContentEncoding()) > 0 || h.PeekBytes(hContentRange) != nil || !p.compressible(h.ContentType()) ||
		headerlist.Has(h.PeekAll(fasthttp.HeaderCacheControl), "no-transform") {
		return
	}
	// The representation depends on Accept-Encoding for every response of
	// this type, whether or not this one ends up compressed.
	if vary := h.PeekAll(fasthttp.HeaderVary); !headerlist.Has(vary, "accept-encoding") && !headerlist.Has(vary, "*") {
		h.AddBytesKV(hVary, valueAcceptEnc)
	}
	if ctx.IsHead() || resp.IsBodyStream() {
		return
	}
	body := resp.Body()
	if len(body) == 0 || len(body) < p.minSize {
		return
	}
	c := p.choose(ctx.Request.Header.PeekBytes(hAcceptEnc))
	if c == none {
		return
	}
	out := bufPool.Get().(*buffer)
	out.b = out.b[:0]
	if c == brotli {
		compressBrotli(out, body, p.brotliLevel)
	} else {
		compressGzip(out, body, p.gzipLevel)
	}
	if len(out.b) >= len(body) {
		bufPool.Put(out)
		return
	}
	// The uncompressed body's buffer goes back to fasthttp's pool full,
	// and the compressed bytes are copied into a buffer from that pool, as
	// fasthttp's own compression does. fasthttp's pool sizes itself from
	// the lengths it is given back: a buffer returned holding only the
	// compressed bytes (swapped, or overwritten in place by SetBody alone)
	// would teach it to drop the large buffers upstream bodies are read
	// into, and every request would allocate one.
	resp.ResetBody()
	resp.SetBody(out.b)
	h.SetContentLength(len(out.b))
	bufPool.Put(out)
	if c == brotli {
		h.SetContentEncodingBytes(valueBr)
	} else {
		h.SetContentEncodingBytes(valueGzip)
	}
	// Byte ranges of the identity representation do not apply to this one.
	h.DelBytes(hAcceptRanges)
	// A strong validator promises byte-identical content: the compressed
	// body is another representation, so the tag becomes weak (weak
	// comparison still matches it in If-None-Match).
	if etag := h.PeekBytes(hETag); len(etag) > 0 && !bytes.HasPrefix(etag, weakPrefix) {
		s := bufPool.Get().(*buffer)
		s.b = append(append(s.b[:0], weakPrefix...), etag...)
		h.SetCanonical(hETag, s.b)
		bufPool.Put(s)
	}
}

// compressible reports whether the media type of a Content-Type value is
// one of the configured types.
func (p *Plugin) compressible(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = headerlist.TrimOWS(ct)
	if len(ct) == 0 {
		return false
	}
	if p.any {
		return true
	}
	for _, t := range p.exact {
		if bytes.EqualFold(ct, t) {
			return true
		}
	}
	for _, t := range p.prefixes {
		if len(ct) > len(t) && bytes.EqualFold(ct[:len(t)], t) {
			return true
		}
	}
	return false
}

// qvalues in thousandths; unset means the coding was not listed.
const unset = -1

// choose picks the coding for an Accept-Encoding value (RFC 9110 §12.5.3):
// the offered coding with the highest q-value, q=0 meaning "not
// acceptable"; a coding not listed takes the q-value of "*" when that is
// listed, else it is not acceptable; ties go to the first in p.offered. No
// header, an empty one, or an identity listed with a higher q-value than
// every offered coding means no compression.
func (p *Plugin) choose(ae []byte) coding {
	if len(ae) == 0 {
		return none
	}
	qBr, qGzip, qIdentity, qStar := unset, unset, unset, unset
	for len(ae) > 0 {
		var elem []byte
		if i := bytes.IndexByte(ae, ','); i >= 0 {
			elem, ae = ae[:i], ae[i+1:]
		} else {
			elem, ae = ae, nil
		}
		name, params := elem, []byte(nil)
		if i := bytes.IndexByte(elem, ';'); i >= 0 {
			name, params = elem[:i], elem[i+1:]
		}
		name = headerlist.TrimOWS(name)
		if len(name) == 0 {
			continue
		}
		q := qvalue(params)
		switch {
		case headerlist.EqualLower(name, "br"):
			qBr = max(qBr, q)
		case headerlist.EqualLower(name, "gzip"), headerlist.EqualLower(name, "x-gzip"):
			qGzip = max(qGzip, q)
		case headerlist.EqualLower(name, "identity"):
			qIdentity = max(qIdentity, q)
		case len(name) == 1 && name[0] == '*':
			qStar = max(qStar, q)
		}
	}
	if qBr == unset {
		qBr = max(qStar, 0)
	}
	if qGzip == unset {
		qGzip = max(qStar, 0)
	}
	if qIdentity == unset {
		qIdentity = max(qStar, 0)
	}
	best, bestQ := none, 0
	for _, c := range p.offered {
		q := qGzip
		if c == brotli {
			q = qBr
		}
		if q > bestQ {
			best, bestQ = c, q
		}
	}
	if best != none && qIdentity > bestQ {
		return none
	}
	return best
}

// qvalue returns the q parameter of an Accept-Encoding element in
// thousandths: 1000 when absent, 0 when malformed (a client that cannot
// write its preference does not get a coding it may not read).
func qvalue(params []byte) int {
	for len(params) > 0 {
		var p []byte
		if i := bytes.IndexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, nil
		}
		p = headerlist.TrimOWS(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue
		}
		return parseQ(p[2:])
	}
	return 1000
}

// parseQ parses an RFC 9110 qvalue: "0", "0.5", "1", "1.000" (at most
// three decimals); anything else is 0.
func parseQ(v []byte) int {
	if len(v) == 0 || (v[0] != '0' && v[0] != '1') {
		return 0
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n
	}
	if v[1] != '.' || len(v) > 5 {
		return 0
	}
	mult := 100
	for _, d := range v[2:] {
		if d < '0' || d > '9' {
			return 0
		}
		n += int(d-'0') * mult
		mult /= 10
	}
	if n > 1000 {
		return 0
	}
	return n
}

// buffer is a pooled output buffer the compressors write to.
type buffer struct{ b []byte }

func (w *buffer) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var bufPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 4<<10)} }}

// Writer pools, one per level. Writers are kept with their state; Reset
// points them at the next output.
var (
	gzipPools   [gz.BestCompression + 1]sync.Pool
	brotliPools [brrr.BestCompression + 1]sync.Pool
)

// brotliWindow is the brotli window (log2 bytes). The gateway compresses
// only bodies it buffered (at most 64 KiB from upstreams), so a 256 KiB
// window loses nothing and keeps pooled encoders small.
const brotliWindow = 18

func compressGzip(out *buffer, body []byte, level int) {
	zw, _ := gzipPools[level].Get().(*gz.Writer)
	if zw == nil {
		// level is one of the validated levels, so there is no error.
		zw, _ = gz.NewWriterLevel(out, level)
	} else {
		zw.Reset(out)
	}
	// Writing to a buffer cannot fail.
	_, _ = zw.Write(body)
	_ = zw.Close()
	gzipPools[level].Put(zw)
}

func compressBrotli(out *buffer, body []byte, level int) {
	zw, _ := brotliPools[level].Get().(*brrr.Writer)
	if zw == nil {
		zw, _ = brrr.NewWriterOptions(out, level, brrr.WriterOptions{LGWin: brotliWindow})
	}
	// Reset (also of a new writer) keeps the encoder across Close, which
	// otherwise releases it.
	zw.ResetWithSizeHint(out, uint(len(body)))
	_, _ = zw.Write(body)
	_ = zw.Close()
	brotliPools[level].Put(zw)
}
