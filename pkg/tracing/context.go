// Package tracing is the gateway's OpenTelemetry tracing: the W3C trace
// context (traceparent) read from clients and written to upstreams without
// allocating, the sampling decision, and the OTLP exporter and tracer
// provider built from the tracing: section.
//
// The gateway decides whether a request is sampled before it creates any
// SDK span: a traceparent with the sampled flag is always kept, one without
// it never is, and a request without a (valid) traceparent is kept with the
// configured ratio. Only sampled requests create spans; the others cost a
// parse, two random numbers and a header.
package tracing

import (
	"math/rand/v2"
)

// SpanContext is a W3C trace context: the ids of a trace and of a span in
// it, and the trace flags.
type SpanContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// FlagSampled is the sampled bit of the trace flags.
const FlagSampled = 0x01

// Sampled reports whether the sampled flag is set.
func (sc SpanContext) Sampled() bool { return sc.Flags&FlagSampled != 0 }

// TraceparentLen is the length of a version 00 traceparent.
const TraceparentLen = 55

// ParseTraceparent parses a traceparent header value (W3C Trace Context
// level 1). It rejects the invalid version ff, upper-case hex, all-zero ids
// and, for version 00, any length but 55; a later version may carry more
// fields after a '-', which are ignored.
func ParseTraceparent(b []byte) (SpanContext, bool) {
	var sc SpanContext
	if len(b) < TraceparentLen || b[2] != '-' || b[35] != '-' || b[52] != '-' {
		return sc, false
	}
	ver, ok := hexByte(b[0], b[1])
	if !ok || ver == 0xff {
		return sc, false
	}
	if len(b) > TraceparentLen && (ver == 0 || b[TraceparentLen] != '-') {
		return sc, false
	}
	var zero byte
	for i := range sc.TraceID {
		v, ok := hexByte(b[3+2*i], b[4+2*i])
		if !ok {
			return sc, false
		}
		sc.TraceID[i] = v
		zero |= v
	}
	if zero == 0 {
		return sc, false
	}
	zero = 0
	for i := range sc.SpanID {
		v, ok := hexByte(b[36+2*i], b[37+2*i])
		if !ok {
			return sc, false
		}
		sc.SpanID[i] = v
		zero |= v
	}
	if zero == 0 {
		return sc, false
	}
	if sc.Flags, ok = hexByte(b[53], b[54]); !ok {
		return sc, false
	}
	return sc, true
}

// AppendTraceparent appends the version 00 traceparent of sc to dst.
func AppendTraceparent(dst []byte, sc SpanContext) []byte {
	dst = append(dst, '0', '0', '-')
	dst = AppendHex(dst, sc.TraceID[:])
	dst = append(dst, '-')
	dst = AppendHex(dst, sc.SpanID[:])
	return append(dst, '-', hexDigits[sc.Flags>>4], hexDigits[sc.Flags&0xf])
}

const hexDigits = "0123456789abcdef"

// AppendHex appends b in lower-case hex to dst.
func AppendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := unhex(hi)
	l, ok2 := unhex(lo)
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// NewTraceID returns a random, non-zero trace id.
func NewTraceID() (id [16]byte) {
	for {
		a, b := rand.Uint64(), rand.Uint64()
		if a|b == 0 {
			continue
		}
		putUint64(id[:8], a)
		putUint64(id[8:], b)
		return id
	}
}

// NewSpanID returns a random, non-zero span id.
func NewSpanID() (id [8]byte) {
	for {
		if a := rand.Uint64(); a != 0 {
			putUint64(id[:], a)
			return id
		}
	}
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
