// Package blacklist is the blacklist plugin: it refuses tokens that were
// revoked (by jti, or by the user's revoke-all mark) in the shared store.
// It runs after jwt and reads the identity jwt recorded.
package blacklist

import (
	"errors"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/store"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "blacklist"

// Defaults of the settings.
const (
	DefaultCacheTTL     = time.Second
	DefaultStoreTimeout = 50 * time.Millisecond
)

// Values of on_store_error.
const (
	Deny  = "deny"
	Allow = "allow"
)

// Settings are the blacklist plugin's YAML settings.
type Settings struct {
	// OnStoreError is what to do when the store cannot answer: deny (503)
	// or allow.
	OnStoreError string `yaml:"on_store_error"`
	// CacheTTL is how long a "not revoked" answer may be served from the
	// Redis client-side cache.
	CacheTTL config.Duration `yaml:"cache_ttl"`
	// StoreTimeout bounds each store call.
	StoreTimeout config.Duration `yaml:"store_timeout"`
}

// Factory builds blacklist plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// Plugin is a compiled blacklist plugin instance.
type Plugin struct {
	store    store.Store
	cached   store.CachedRevocations // store, when it answers from memory
	local    bool
	allow    bool
	maxStale time.Duration
	timeout  time.Duration

	revoked     *vm.Counter
	storeReject *vm.Counter
	storeErrors *vm.Counter
}

var (
	_ plugins.Plugin         = (*Plugin)(nil)
	_ plugins.Requirer       = (*Plugin)(nil)
	_ plugins.StoreDependent = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	s := Settings{OnStoreError: Deny, CacheTTL: config.Duration(DefaultCacheTTL), StoreTimeout: config.Duration(DefaultStoreTimeout)}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	var errs []error
	if s.OnStoreError != Deny && s.OnStoreError != Allow {
		errs = append(errs, sec.Errorf("on_store_error", "expected deny or allow, got %q", s.OnStoreError))
	}
	if s.StoreTimeout <= 0 {
		errs = append(errs, sec.Errorf("store_timeout", "must be positive, got %s", s.StoreTimeout))
	}
	if env == nil || env.Store == nil {
		errs = append(errs, config.Errorf(sec.File, sec.Node, sec.Path, "needs a revocation store, and none is configured"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	_, local := env.Store.(store.Local)
	cached, _ := env.Store.(store.CachedRevocations)
	m := metrics.ForRoute(env.Route)
	return &Plugin{
		store:       env.Store,
		cached:      cached,
		local:       local,
		allow:       s.OnStoreError == Allow,
		maxStale:    s.CacheTTL.D(),
		timeout:     s.StoreTimeout.D(),
		revoked:     m.AuthRejected(metrics.ReasonRevoked),
		storeReject: m.AuthRejected(metrics.ReasonStoreError),
		storeErrors: metrics.StoreErrors("revocation_check"),
	}, nil
}

// Requires implements plugins.Requirer: the identity comes from jwt.
func (*Plugin) Requires() []string { return []string{"jwt"} }

// Close implements plugins.Plugin. The store belongs to the gateway.
func (*Plugin) Close() error { return nil }

// FailsClosedOnStoreError implements plugins.StoreDependent: true with
// on_store_error: deny, the default.
func (p *Plugin) FailsClosedOnStoreError() bool { return !p.allow }
