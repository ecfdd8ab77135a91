package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
)

var (
	strXForwardedFor   = []byte(fasthttp.HeaderXForwardedFor)
	strXForwardedProto = []byte(fasthttp.HeaderXForwardedProto)
	strXForwardedHost  = []byte(fasthttp.HeaderXForwardedHost)
	strTrailer         = []byte(fasthttp.HeaderTrailer)
	strHTTPS           = []byte("https")
	strHTTP            = []byte("http")
	strCommaSpace      = []byte(", ")

	// hopByHop lists the hop-by-hop headers of RFC 9110 section 7.6.1 plus
	// the legacy Proxy-Connection and Keep-Alive, spelled the way fasthttp
	// normalises header names ("TE" becomes "Te").
	hopByHop = [][]byte{
		[]byte("Connection"),
		[]byte("Keep-Alive"),
		[]byte("Proxy-Connection"),
		[]byte("Proxy-Authenticate"),
		[]byte("Proxy-Authorization"),
		[]byte("Te"),
		[]byte("Trailer"),
		[]byte("Transfer-Encoding"),
		[]byte("Upgrade"),
	}

	// Folded prefixes and names (see foldByte), matched by folded name.
	prefixUser      = []byte("x-user-")
	prefixForwarded = []byte("x-forwarded-")
	nameForwarded   = []byte("forwarded")
	nameRealIP      = []byte("x-real-ip")
	nameProxy       = []byte("proxy")

	// Lower-case names matched case-insensitively.
	nameCL        = []byte("content-length")
	nameTE        = []byte("transfer-encoding")
	nameHost      = []byte("host")
	nameClose     = []byte("close")
	nameKeepAlive = []byte("keep-alive")
)

// TrustedProxies is a compiled set of the networks whose peers may set
// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host. A nil
// *TrustedProxies trusts nobody.
type TrustedProxies struct {
	prefixes []netip.Prefix
}

// ParseTrustedProxies compiles CIDRs ("10.0.0.0/8", "fd00::/8") and bare IP
// addresses ("192.0.2.1", "2001:db8::1"), IPv4 and IPv6. The error names the
// first entry that is neither.
func ParseTrustedProxies(cidrs []string) (*TrustedProxies, error) {
	t := &TrustedProxies{prefixes: make([]netip.Prefix, 0, len(cidrs))}
	for _, raw := range cidrs {
		s := strings.TrimSpace(raw)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			pp, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("proxy: trusted proxy %q: not an IP address or CIDR: %w", raw, err)
			}
			p = pp
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("proxy: trusted proxy %q: not an IP address or CIDR: %w", raw, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("proxy: trusted proxy %q: zoned addresses are not supported", raw)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// Peers are compared unmapped, so an IPv4-mapped prefix becomes IPv4.
		if a := p.Addr(); a.Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return nil, fmt.Errorf("proxy: trusted proxy %q: IPv4-mapped prefix shorter than /96", raw)
			}
			p = netip.PrefixFrom(a.Unmap(), bits)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, nil
}

// Len returns the number of networks in the set.
func (t *TrustedProxies) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prefixes)
}

// Contains reports whether ip belongs to a trusted network.
func (t *TrustedProxies) Contains(ip net.IP) bool {
	return t.ContainsAddr(addrFromIP(ip))
}

// ContainsAddr reports whether a belongs to a trusted network. IPv4-mapped
// IPv6 addresses are treated as IPv4.
func (t *TrustedProxies) ContainsAddr(a netip.Addr) bool {
	if t == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IdentityHeaders is the set of request headers only the gateway may set:
// every name starting with "X-User-", and the names plugins claim for the
// identity they establish (jwt's forward_claims, ...). Client-sent copies
// are removed from every request, on every route.
//
// Names are matched folded: ASCII case is ignored and '_' is the same byte
// as '-'. CGI, WSGI, Rack and the frameworks built on them expose headers as
// variables such as HTTP_X_USER_ID, which X-User-ID, X_User_ID and
// x_user-id all become, so an application cannot tell a client's X_User_ID
// from the gateway's X-User-ID; all of them are removed. A nil
// *IdentityHeaders holds the "X-User-" prefix only.
type IdentityHeaders struct {
	// folded holds the claimed names folded, sorted and without repeats.
	folded [][]byte
}

// NewIdentityHeaders compiles the claimed header names. Names that fold to
// the same bytes count once.
func NewIdentityHeaders(names []string) *IdentityHeaders {
	seen := map[string]bool{}
	ids := &IdentityHeaders{}
	for _, n := range names {
		f := string(AppendFoldedName(nil, []byte(n)))
		if f == "" || seen[f] || hasPrefixFolded([]byte(f), prefixUser) {
			continue
		}
		seen[f] = true
		ids.folded = append(ids.folded, []byte(f))
	}
	sort.Slice(ids.folded, func(i, j int) bool { return string(ids.folded[i]) < string(ids.folded[j]) })
	return ids
}

// Names returns the folded claimed names ("x-tenant"), sorted; the
// "X-User-" prefix is implied and not listed.
func (ids *IdentityHeaders) Names() []string {
	if ids == nil {
		return nil
	}
	out := make([]string, len(ids.folded))
	for i, f := range ids.folded {
		out[i] = string(f)
	}
	return out
}

// Contains reports whether a header of this name is an identity header:
// its folded form starts with "x-user-" or is a claimed name. It does not
// allocate.
func (ids *IdentityHeaders) Contains(name []byte) bool {
	if hasPrefixFolded(name, prefixUser) {
		return true
	}
	if ids == nil {
		return false
	}
	for _, f := range ids.folded {
		if equalFolded(name, f) {
			return true
		}
	}
	return false
}

// AppendFoldedName appends the folded form of a header name to dst: ASCII
// letters in lower case and '_' as '-'.
func AppendFoldedName(dst, name []byte) []byte {
	for _, c := range name {
		dst = append(dst, foldByte(c))
	}
	return dst
}

// foldByte folds one header-name byte: lower case, and '_' as '-'.
func foldByte(c byte) byte { return foldTable[c] }

// foldTable maps every byte to its folded form, so folding costs one load.
var foldTable = func() (t [256]byte) {
	for i := range t {
		t[i] = lower(byte(i))
	}
	t['_'] = '-'
	return t
}()

// equalFolded reports whether name folds to folded, which is already folded.
func equalFolded(name, folded []byte) bool {
	if len(name) != len(folded) {
		return false
	}
	for i := range name {
		if foldByte(name[i]) != folded[i] {
			return false
		}
	}
	return true
}

// hasPrefixFolded reports whether name's folded form starts with the
// folded prefix.
func hasPrefixFolded(name, prefix []byte) bool {
	return len(name) >= len(prefix) && equalFolded(name[:len(prefix)], prefix)
}

// addrFromIP converts ip without allocating; nil or malformed gives the zero
// Addr.
func addrFromIP(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// PrepareRequest cleans a client request before it is forwarded and returns
// the client IP, appended to dstIP. It must run before any plugin sets
// headers on the request, since it removes identity headers by name.
//
// It removes the hop-by-hop headers (Connection, Keep-Alive,
// Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding, Upgrade), the Proxy header (httpoxy), every header the
// client named in Connection
// (except the framing headers Content-Length, Transfer-Encoding and Host,
// which fasthttp manages), request trailers, and every identity header of
// ids, matched by folded name (see IdentityHeaders). Body framing is unaffected: fasthttp writes Content-Length or chunked
// encoding from the body itself.
//
// Then it sets the forwarding headers. From a peer outside tp, every
// X-Forwarded-* header, Forwarded and X-Real-IP are dropped (by folded name,
// so X_Forwarded_For too; from a trusted peer only the spellings with '_'
// are) and
// X-Forwarded-For becomes the peer address, X-Forwarded-Proto "https" or
// "http" after isTLS, X-Forwarded-Host the request Host. From a trusted peer,
// the peer is appended to X-Forwarded-For (several X-Forwarded-For headers are
// joined into one) and the client's X-Forwarded-Proto and X-Forwarded-Host are
// kept when present.
//
// The client IP is the peer for an untrusted peer. For a trusted peer it is
// the right-most X-Forwarded-For entry that is not itself trusted; when every
// entry is trusted, the left-most one; when an entry is not an IP address,
// the trusted address to its right, as the chain cannot be followed past it.
// The spare capacity of dstIP is used as scratch space, so reusing one buffer
// keeps PrepareRequest free of allocations.
func PrepareRequest(req *fasthttp.Request, peer net.IP, isTLS bool, tp *TrustedProxies, ids *IdentityHeaders, dstIP []byte) (clientIP []byte) {
	h := &req.Header
	peerAddr := addrFromIP(peer)
	trusted := tp.ContainsAddr(peerAddr)

	// Request trailers are dropped first: removing the Trailer header, even
	// through a Connection token, would turn them into ordinary headers that
	// the raw block below does not list.
	if keys := h.PeekTrailerKeys(); len(keys) > 0 {
		for _, k := range keys {
			h.DelBytes(k)
		}
		h.DelBytes(strTrailer)
	}

	// Headers named in Connection, while Connection is still there.
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for len(v) > 0 {
			var tok []byte
			tok, v = nextToken(v)
			if len(tok) == 0 || equalFold(tok, nameClose) || equalFold(tok, nameKeepAlive) ||
				equalFold(tok, nameCL) || equalFold(tok, nameTE) || equalFold(tok, nameHost) {
				continue
			}
			h.DelBytes(tok)
		}
	}

	if raw := h.RawHeaders(); len(raw) > 0 {
		// The raw block names every header the client sent.
		for len(raw) > 0 {
			var name []byte
			name, raw = nextHeaderName(raw)
			if len(name) > 0 && mustStrip(name, trusted, ids) {
				h.DelBytes(name)
			}
		}
	} else {
		stripWithoutRaw(h, trusted, ids)
	}
	h.ResetConnectionClose()

	if !trusted {
		start := len(dstIP)
		if peerAddr.IsValid() {
			dstIP = peerAddr.AppendTo(dstIP)
			h.SetCanonical(strXForwardedFor, dstIP[start:])
		}
		if isTLS {
			h.SetCanonical(strXForwardedProto, strHTTPS)
		} else {
			h.SetCanonical(strXForwardedProto, strHTTP)
		}
		if host := h.Host(); len(host) > 0 {
			h.SetCanonical(strXForwardedHost, host)
		}
		return dstIP
	}

	// Trusted peer: join the client's X-Forwarded-For values and the peer in
	// the scratch space after dstIP.
	start := len(dstIP)
	buf := dstIP
	for _, v := range h.PeekAll(fasthttp.HeaderXForwardedFor) {
		v = trimOWS(v)
		if len(v) == 0 {
			continue
		}
		if len(buf) > start {
			buf = append(buf, strCommaSpace...)
		}
		buf = append(buf, v...)
	}
	if len(buf) > start {
		buf = append(buf, strCommaSpace...)
	}
	buf = peerAddr.AppendTo(buf)
	h.DelBytes(strXForwardedFor)
	h.SetCanonical(strXForwardedFor, buf[start:])
	if len(h.PeekBytes(strXForwardedProto)) == 0 {
		if isTLS {
			h.SetCanonical(strXForwardedProto, strHTTPS)
		} else {
			h.SetCanonical(strXForwardedProto, strHTTP)
		}
	}
	if len(h.PeekBytes(strXForwardedHost)) == 0 {
		if host := h.Host(); len(host) > 0 {
			h.SetCanonical(strXForwardedHost, host)
		}
	}
	client := clientFromChain(buf[start:], tp)
	dstIP = buf[:start]
	if client.IsValid() {
		dstIP = client.AppendTo(dstIP)
	}
	return dstIP
}

// clientFromChain walks an X-Forwarded-For list from the right and returns
// the first address outside tp. See PrepareRequest for the fallbacks.
func clientFromChain(list []byte, tp *TrustedProxies) netip.Addr {
	var last netip.Addr
	for end := len(list); end > 0; {
		i := bytes.LastIndexByte(list[:end], ',')
		entry := trimOWS(list[i+1 : end])
		end = max(i, 0)
		if len(entry) == 0 {
			continue
		}
		a, ok := parseForwardedAddr(entry)
		if !ok {
			return last
		}
		if !tp.ContainsAddr(a) {
			return a
		}
		last = a
	}
	return last
}

// parseForwardedAddr parses one X-Forwarded-For entry: an IPv4 or IPv6
// address, optionally with a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseForwardedAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 || bytes.IndexByte(b, '%') >= 0 {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		j := bytes.IndexByte(b, ']')
		if j < 0 {
			return netip.Addr{}, false
		}
		b = b[1:j]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		b = b[:i]
	}
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	// The string view never outlives this call: ParseAddr keeps no reference
	// to its input once zones are excluded above. Copying it would cost an
	// allocation per request (measured: 1 alloc/op).
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// mustStrip reports whether the client header name is removed before the
// request is forwarded.
func mustStrip(name []byte, trusted bool, ids *IdentityHeaders) bool {
	if ids.Contains(name) {
		return true
	}
	// Every built-in name starts with one of these letters; most client
	// headers are decided by this switch alone.
	switch lower(name[0]) {
	case 'x':
		// A trusted proxy sets the forwarding headers with '-'; a spelling
		// with '_' that it passed on is a client's, folded into the same
		// variable by CGI-style applications.
		if hasPrefixFolded(name, prefixForwarded) || equalFolded(name, nameRealIP) {
			return !trusted || bytes.IndexByte(name, '_') >= 0
		}
	case 'f':
		if equalFolded(name, nameForwarded) {
			return !trusted || bytes.IndexByte(name, '_') >= 0
		}
	case 'p':
		// "Proxy" is no standard request header, but CGI turns it into
		// HTTP_PROXY, which many HTTP client libraries of the upstream
		// would take as their outbound proxy ("httpoxy").
		if equalFolded(name, nameProxy) {
			return true
		}
		for _, hop := range hopByHop {
			if equalFold(name, hop) {
				return true
			}
		}
	case 'c', 'k', 't', 'u':
		for _, hop := range hopByHop {
			if equalFold(name, hop) {
				return true
			}
		}
	}
	return false
}

// DropUnderscoreHeaders removes every request header whose name contains
// '_', as nginx does unless underscores_in_headers is on: applications that
// fold '_' into '-' cannot tell such a header from its dash spelling. It
// does not allocate for requests the fasthttp server read.
func DropUnderscoreHeaders(req *fasthttp.Request) {
	h := &req.Header
	raw := h.RawHeaders()
	if len(raw) == 0 {
		var names [][]byte
		for k := range h.All() {
			if bytes.IndexByte(k, '_') >= 0 {
				names = append(names, append([]byte(nil), k...))
			}
		}
		for _, k := range names {
			h.DelBytes(k)
		}
		return
	}
	for len(raw) > 0 {
		var name []byte
		name, raw = nextHeaderName(raw)
		if bytes.IndexByte(name, '_') >= 0 {
			h.DelBytes(name)
		}
	}
}

// stripWithoutRaw strips a request that was not read from the wire and so
// has no raw header block. It collects names through All, which allocates;
// requests the fasthttp server hands over never take this path.
func stripWithoutRaw(h *fasthttp.RequestHeader, trusted bool, ids *IdentityHeaders) {
	var names [][]byte
	for k := range h.All() {
		if mustStrip(k, trusted, ids) {
			names = append(names, append([]byte(nil), k...))
		}
	}
	for _, k := range names {
		h.DelBytes(k)
	}
}

// CleanResponse removes the hop-by-hop headers, and those the upstream named
// in Connection, from an upstream response before it goes to the client. An
// upstream's "Connection: close" does not close the client connection.
// Content-Length and Transfer-Encoding are never removed through Connection:
// fasthttp frames the body itself. Header names are expected in fasthttp's
// normalised form, which is how Upstream.Do reads them.
func CleanResponse(resp *fasthttp.Response) {
	h := &resp.Header
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		for len(v) > 0 {
			var tok []byte
			tok, v = nextToken(v)
			if len(tok) == 0 || equalFold(tok, nameClose) || equalFold(tok, nameKeepAlive) ||
				equalFold(tok, nameCL) || equalFold(tok, nameTE) {
				continue
			}
			h.DelBytes(tok)
		}
	}
	// Peeking first is several times cheaper than deleting an absent name.
	for _, name := range hopByHop {
		if h.PeekCanonical(name) != nil {
			h.DelBytes(name)
		}
	}
	h.ResetConnectionClose()
}

// nextToken splits the first element off a comma-separated header value.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return trimOWS(v[:i]), v[i+1:]
	}
	return trimOWS(v), nil
}

// nextHeaderName returns the name of the first header line in a raw header
// block and the rest of the block. Continuation lines and the final empty
// line yield an empty name.
func nextHeaderName(raw []byte) (name, rest []byte) {
	line := raw
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		line, rest = raw[:i], raw[i+1:]
	}
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return nil, rest
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, rest
	}
	return trimOWS(line[:i]), rest
}

// trimOWS trims spaces and tabs on both sides.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares ASCII header names case-insensitively.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
