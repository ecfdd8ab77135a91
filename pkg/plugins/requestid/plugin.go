// Package requestid implements the request-id plugin and the request id the
// gateway assigns to every request (SPEC §4): a client's X-Request-ID is
// kept when it is 1–128 characters of [A-Za-z0-9._:-], otherwise a random
// UUID is generated.
package requestid

import (
	"crypto/rand"
	"sync"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
)

// DefaultHeader is the header the id travels in unless configured.
const DefaultHeader = "X-Request-ID"

// MaxLen is the longest client-supplied id that is kept.
const MaxLen = 128

// Settings are the plugin's YAML keys.
type Settings struct {
	// Header names the header carrying the id (default X-Request-ID).
	Header string `yaml:"header"`
}

// Factory builds request-id plugins.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return "request-id" }

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	s := Settings{Header: DefaultHeader}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	if !config.IsToken(s.Header) {
		return nil, sec.Errorf("header", "invalid header name %q", s.Header)
	}
	return &Plugin{header: []byte(s.Header), custom: !equalFold(s.Header, DefaultHeader)}, nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// Valid reports whether a client-supplied id may be kept.
func Valid(id []byte) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Assign appends to dst[:0] the client's id when Valid, else a new UUID.
func Assign(dst, client []byte) []byte {
	if Valid(client) {
		return append(dst[:0], client...)
	}
	return AppendUUID(dst[:0])
}

// random hands out 16-byte blocks from a pooled buffer, so generating an id
// costs a crypto/rand read only once per 256 ids.
type randBuf struct {
	buf [16 * 256]byte
	off int
}

var randPool = sync.Pool{New: func() any { return &randBuf{off: len(randBuf{}.buf)} }}

const hexDigits = "0123456789abcdef"

// AppendUUID appends a random (version 4) UUID in canonical form.
func AppendUUID(dst []byte) []byte {
	r := randPool.Get().(*randBuf)
	if r.off == len(r.buf) {
		_, _ = rand.Read(r.buf[:])
		r.off = 0
	}
	var u [16]byte
	copy(u[:], r.buf[r.off:r.off+16])
	r.off += 16
	randPool.Put(r)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0xf])
	}
	return dst
}
