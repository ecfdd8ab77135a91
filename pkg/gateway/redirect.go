package gateway

import (
	"bytes"
	"net/netip"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

var (
	strHTTPSScheme = []byte("https://")
	hdrLocation    = []byte("Location")
)

// newRedirectServer is the redirect_http listener's server: every request
// is answered 308 to the same host and URI on https, with the client
// listener's timeouts and header limit (bodies are not read beyond that).
func (g *Gateway) newRedirectServer(cfg *config.Config) *fasthttp.Server {
	s := cfg.Server
	return &fasthttp.Server{
		Handler:               g.handleRedirect,
		ErrorHandler:          g.handleParseError,
		Name:                  "gatewayd",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadTimeout:           s.HeaderTimeout.D(),
		WriteTimeout:          s.WriteTimeout.D(),
		IdleTimeout:           s.IdleTimeout.D(),
		ReadBufferSize:        int(s.MaxRequestHeaderBytes),
		// A redirect reads no body: a client that sends one has it
		// discarded up to this size, and a larger one closes the
		// connection.
		MaxRequestBodySize:           64 << 10,
		Concurrency:                  2 * g.maxConns,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		SecureErrorLogMessage:        true,
		Logger:                       zapPrintf{g.logger.Named("redirect")},
	}
}

// handleRedirect answers a request on the redirect_http listener: 308 to
// https://<host>[:port]<uri>, the host taken from the Host header without
// its port, and the port the
// TLS listener's when it is not 443. A host that is not a valid DNS name or
// IP address is answered 400, so that nothing the client sends can put
// another host, a path or a header into Location.
func (g *Gateway) handleRedirect(ctx *fasthttp.RequestCtx) {
	host, ok := redirectHost(ctx.Request.Header.Host())
	if !ok {
		st := reqctx.Acquire(ctx)
		st.RequestID = requestid.Assign(st.RequestID, ctx.Request.Header.PeekBytes(hdrRequestID))
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "missing or invalid Host header")
		ctx.SetConnectionClose()
		return
	}
	st := reqctx.Acquire(ctx)
	loc := append(st.Scratch[:0], strHTTPSScheme...)
	loc = append(loc, host...)
	if p := g.httpsPort.Load(); p != nil && *p != "" {
		loc = append(loc, ':')
		loc = append(loc, *p...)
	}
	// The URI as parsed: path (escaped) and query, never a scheme or host.
	loc = append(loc, ctx.URI().RequestURI()...)
	st.Scratch = loc
	ctx.Response.Header.SetCanonical(hdrLocation, loc)
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
	if g.draining.Load() {
		ctx.SetConnectionClose()
	}
}

// redirectHost returns the host part of a Host value without its port,
// lower-cased in place, if it is a syntactically valid DNS name, IPv4
// address or bracketed IPv6 address (with an optional numeric port).
func redirectHost(h []byte) ([]byte, bool) {
	if len(h) == 0 || len(h) > 261 {
		return nil, false
	}
	host, port := h, []byte(nil)
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 {
			return nil, false
		}
		host, port = h[:end+1], h[end+1:]
		a, err := netip.ParseAddr(string(host[1:end]))
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, false
		}
	} else {
		if i := bytes.IndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i:]
		}
		if !validDNSName(host) {
			return nil, false
		}
	}
	if len(port) > 0 {
		if port[0] != ':' || len(port) > 6 {
			return nil, false
		}
		for _, c := range port[1:] {
			if c < '0' || c > '9' {
				return nil, false
			}
		}
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			host[i] = c + 'a' - 'A'
		}
	}
	return host, true
}

// validDNSName reports whether b is a DNS name (or a dotted IPv4 address):
// labels of letters, digits and '-' (not at either end), at most 63 bytes
// each and 253 in all, with an optional final dot.
func validDNSName(b []byte) bool {
	b = bytes.TrimSuffix(b, []byte("."))
	if len(b) == 0 || len(b) > 253 {
		return false
	}
	label := 0
	for i, c := range b {
		switch {
		case c == '.':
			if label == 0 || b[i-1] == '-' {
				return false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return b[len(b)-1] != '-'
}
