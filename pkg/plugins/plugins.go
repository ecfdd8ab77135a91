// Package plugins defines the contract between the gateway and its plugins:
// a Factory turns a YAML section into a compiled Plugin once, at config
// time; the Plugin's Handle runs per request on the *fasthttp.RequestCtx and
// either passes the request on (Next) or writes the response itself (Done).
package plugins

import (
	"fmt"
	"sort"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Verdict is what a plugin decided about a request.
type Verdict uint8

const (
	// Next passes the request to the next plugin (or the upstream).
	Next Verdict = iota
	// Done means the plugin wrote the response; the chain stops.
	Done
)

// Plugin is a compiled plugin instance for one route.
type Plugin interface {
	// Handle runs on the hot path. It must not keep ctx, or any slice
	// obtained from it, after it returns.
	Handle(ctx *fasthttp.RequestCtx) Verdict
	// Close releases what Build acquired. It is called exactly once, after
	// the last request that could use the instance has finished.
	Close() error
}

// ResponseHook is implemented by plugins that touch the response: the
// gateway calls OnResponse, in chain order, for every plugin whose Handle
// ran, after the upstream answered or after a plugin ended the chain.
type ResponseHook interface {
	OnResponse(ctx *fasthttp.RequestCtx)
}

// Requirer is implemented by plugins that need other plugin kinds earlier in
// the same chain (blacklist needs jwt), or an identity plugin of any kind
// (Identity: rbac is satisfied by jwt or api-key). The gateway rejects a
// route that breaks it.
type Requirer interface {
	Requires() []string
}

// Identity, listed by a Requirer, asks for an Authenticator (jwt, api-key)
// earlier in the chain, whatever its kind.
const Identity = "identity"

// HeaderClaimer is implemented by plugins that set request headers carrying
// identity (jwt's forward_claims; any header a plugin forwards an identity
// in). The gateway strips client-sent copies of these headers on every
// route, whatever its plugins, and matches them by folded name: case is
// ignored and '_' is the same as '-', so a client's X_Tenant goes as surely
// as its X-Tenant. Instances no route uses contribute too.
type HeaderClaimer interface {
	ClaimHeaders() []string
}

// HeaderWriter is implemented by plugins that set or add request headers
// named in their settings (headers). Such a plugin can never write an
// identity header, and the names the identity plugins claim are only known
// once the whole file is built: after building every plugin (instances no
// route uses included), the gateway calls CheckHeaders with a report of
// whether a name is an identity header (X-User-*, every HeaderClaimer's
// names, tls.forward_client_cert; matched by folded name: case ignored, '_'
// the same as '-'), and refuses the configuration with the *config.Error
// values it returns, each positioned at the offending name.
type HeaderWriter interface {
	CheckHeaders(isIdentity func(name string) bool) error
}

// MethodAnswerer is implemented by plugins that answer some methods
// themselves whatever the route lists (cors answers OPTIONS preflights). The
// gateway adds those methods to a route that restricts its methods.
type MethodAnswerer interface {
	AnsweredMethods() []string
}

// FileUser is implemented by plugins that read files named in their
// settings when they are built (api-key's keys_file). Files returns each
// path with the SHA-256 of the content the plugin read: a reload is not
// skipped as unchanged while any of them differs, even when the
// configuration file itself did not change.
type FileUser interface {
	Files() []File
}

// StoreDependent is implemented by plugins that call the shared store on
// requests and can be told what to do when it fails (on_store_error).
// FailsClosedOnStoreError reports whether the instance answers 503 then
// (deny): /readyz includes the store only while a route of the live
// configuration has such a plugin, since an instance whose store is down
// serves every other request as usual.
type StoreDependent interface {
	FailsClosedOnStoreError() bool
}

// File is one file a plugin read at build time.
type File struct {
	Path string
	Sum  [32]byte
}

// Authenticator is implemented by plugins that establish who the caller is
// (jwt, api-key): they fill the request's reqctx.Identity. Authenticates reports whether every request the instance passes on
// carries a verified identity; jwt or api-key with optional: true let
// anonymous requests through and so do not.
type Authenticator interface {
	Authenticates() bool
}

// Factory builds plugins of one kind.
type Factory interface {
	// Kind is the name used in YAML ("jwt", "ratelimit").
	Kind() string
	// Build decodes sec strictly, validates it and compiles a Plugin.
	// Errors must be *config.Error values (sec.Errorf), joined when several.
	Build(sec config.Section, env *Env) (Plugin, error)
}

// Env is what a factory gets from the gateway besides its settings.
type Env struct {
	// Route is the name of the route the instance serves.
	Route string
	// Store is the shared state: Redis when configured, else in-process.
	Store store.Store
	// Logger is the gateway's logger; plugins add their own fields once.
	Logger *zap.Logger
	// Resources keeps long-lived objects (JWKS fetchers, clients) alive
	// across reloads, shared by key.
	Resources *Resources
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Methods are the methods the route lists in match.methods; empty means
	// every method (and for an instance no route uses).
	Methods []string
	// Authenticated reports whether an earlier plugin in the route's chain
	// lets only requests with a verified identity through (an Authenticator
	// that Authenticates).
	Authenticated bool
	// Warn receives the instance's configuration warnings (see
	// config.Warning); nil discards them. Use Warning to report one.
	Warn func(*config.Warning)
}

// Warning reports a configuration warning about the instance being built:
// `gatewayd -check` prints it and the gateway logs it at start and reload.
func (e *Env) Warning(w *config.Warning) {
	if e != nil && e.Warn != nil {
		e.Warn(w)
	}
}

// Registry maps kinds to factories. It is built once at startup and then
// only read.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds f. Registering a kind twice is a programming error and panics.
func (r *Registry) Register(f Factory) {
	if _, dup := r.factories[f.Kind()]; dup {
		panic(fmt.Sprintf("plugins: factory %q registered twice", f.Kind()))
	}
	r.factories[f.Kind()] = f
}

// Lookup returns the factory of kind.
func (r *Registry) Lookup(kind string) (Factory, bool) {
	f, ok := r.factories[kind]
	return f, ok
}

// Kinds returns the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	out := make([]string, 0, len(r.factories))
	for k := range r.factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
