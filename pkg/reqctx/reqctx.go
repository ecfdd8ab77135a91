// Package reqctx holds the per-request state the gateway and its plugins
// share on a *fasthttp.RequestCtx: the request id, the client IP, the route
// and the caller's identity. A State is pooled; fasthttp returns it to the
// pool when it resets the request's user values after the handler returns,
// so nothing in it may be kept past the handler.
package reqctx

import (
	"sync"

	"github.com/gatewayd/gatewayd/pkg/router"
	"github.com/valyala/fasthttp"
)

// Identity is who the caller is, whichever plugin established it: the jwt
// plugin (a verified access token of any provider) and the api-key plugin
// fill the same record, and rbac, ratelimit (key: user), blacklist, header
// forwarding and the access log read only it. Subject and JTI are owned by
// the State and valid only during the request. Roles, Scopes and Headers
// are shared with the plugin that set them (a verified-token cache entry, a
// compiled key table): they are immutable and must never be modified.
type Identity struct {
	Subject []byte
	// Roles and Scopes are the normalised sets (no duplicates, no empty
	// values) the identity's claims or key entry name.
	Roles  []string
	Scopes []string
	// Headers are the identity headers the upstream receives (forward_claims,
	// an api-key's forward_header), in canonical form.
	Headers []Header
	// JTI is the token id; empty for identities without a token (API keys).
	JTI []byte
	// IssuedAtMs is the token's iat in unix milliseconds (0 without a token).
	IssuedAtMs int64
	// ExpiresAt is the token's exp in unix seconds (0 without a token).
	ExpiresAt int64
}

// Header is one identity header: a canonical name and its value.
type Header struct {
	Name, Value []byte
}

// HasRole reports whether role is one of the identity's roles.
func (id *Identity) HasRole(role string) bool {
	for _, r := range id.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// HasScope reports whether scope is one of the identity's scopes.
func (id *Identity) HasScope(scope string) bool {
	for _, s := range id.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// SetHeaders sets the identity headers on the upstream request.
func (id *Identity) SetHeaders(h *fasthttp.RequestHeader) {
	for i := range id.Headers {
		h.SetCanonical(id.Headers[i].Name, id.Headers[i].Value)
	}
}

func (id *Identity) reset() {
	id.Subject = id.Subject[:0]
	id.Roles, id.Scopes, id.Headers = nil, nil, nil
	id.JTI = id.JTI[:0]
	id.IssuedAtMs, id.ExpiresAt = 0, 0
}

// State is the per-request state. Fields are written by the gateway (route,
// request id, client ip) and by plugins (identity).
type State struct {
	RequestID []byte
	ClientIP  []byte
	// Route is the matched route's name ("" before routing).
	Route string
	// Upstream is the upstream name the request is sent to.
	Upstream string
	// Authenticated is true once an identity plugin (jwt, api-key)
	// established who the caller is.
	Authenticated bool
	Identity      Identity
	// Token is the raw bearer token the jwt plugin verified (empty for
	// other identities).
	Token []byte
	// RateLimit is the most restrictive rate-limit result of the request,
	// written by the ratelimit plugin's Handle and turned into response
	// headers by its OnResponse (the upstream's response replaces whatever
	// was set on ctx.Response before forwarding).
	RateLimit RateLimit
	// Path is the normalised request path (decoded); Scratch is a buffer the
	// gateway reuses for the escaped upstream path.
	Path    []byte
	Scratch []byte
	// Params are the parameters the route's match.path captured, as
	// offsets into Path.
	Params router.Params
}

// RateLimit is one rate-limit decision, for response headers.
type RateLimit struct {
	// Owner is the plugin instance that wrote it (nil: none).
	Owner any
	// Remaining is whole tokens left; Reset and RetryAfter are in ms.
	Remaining  int64
	ResetMs    int64
	RetryAfter int64
}

type key struct{}

var pool = sync.Pool{New: func() any { return new(State) }}

// Acquire attaches a fresh State to ctx and returns it.
func Acquire(ctx *fasthttp.RequestCtx) *State {
	s := pool.Get().(*State)
	ctx.SetUserValue(key{}, s)
	return s
}

// Get returns the State attached to ctx, or nil.
func Get(ctx *fasthttp.RequestCtx) *State {
	s, _ := ctx.UserValue(key{}).(*State)
	return s
}

// Close resets the state and returns it to the pool. fasthttp calls it when
// the request's user values are reset; it is not to be called by plugins.
func (s *State) Close() error {
	s.RequestID = s.RequestID[:0]
	s.ClientIP = s.ClientIP[:0]
	s.Route, s.Upstream = "", ""
	s.Authenticated = false
	s.Identity.reset()
	s.Token = s.Token[:0]
	s.RateLimit = RateLimit{}
	s.Path = s.Path[:0]
	s.Scratch = s.Scratch[:0]
	s.Params = router.Params{}
	pool.Put(s)
	return nil
}
