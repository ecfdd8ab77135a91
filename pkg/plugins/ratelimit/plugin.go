// Package ratelimit implements the ratelimit plugin (SPEC §4): a token
// bucket per client key, kept in the gateway's store (Redis, shared by every
// instance, or in-process). A request takes cost tokens; a bucket holds up
// to burst tokens and gains limit tokens per period. Rejected requests get
// 429 with Retry-After; every response can carry the IETF draft's
// RateLimit-Policy/RateLimit fields and the legacy RateLimit-* headers.
package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/lease"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in YAML.
const Kind = "ratelimit"

// Values of sync.
const (
	// SyncExact takes every request's tokens from the store in one call.
	SyncExact = "exact"
	// SyncLease takes tokens from the store in batches (leases) and
	// admits locally from them.
	SyncLease = "lease"
)

// DefaultStoreTimeout bounds a store call unless store_timeout says otherwise.
const DefaultStoreTimeout = 50 * time.Millisecond

// MaxBucketUnits bounds burst × period in microseconds: the largest bucket
// the stores' integer arithmetic represents (memory.MaxUnits, redis.MaxUnits).
const MaxBucketUnits = 1 << 52

// Settings are the plugin's YAML keys.
type Settings struct {
	// Key is one key kind or a list of them: ip, user, route, header:NAME.
	Key *yaml.Node `yaml:"key"`
	// Limit is how many tokens are added per Period.
	Limit int64 `yaml:"limit"`
	// Period is the refill period.
	Period config.Duration `yaml:"period"`
	// Burst is the bucket size (default Limit).
	Burst int64 `yaml:"burst"`
	// Cost is what one request takes (default 1).
	Cost int64 `yaml:"cost"`
	// Bucket names a bucket shared by every route that names it (default:
	// the route's name, so each route has its own).
	Bucket string `yaml:"bucket"`
	// Headers selects the response headers: both, ietf, legacy or off.
	Headers string `yaml:"headers"`
	// OnStoreError is allow or deny: what to do when the store fails.
	OnStoreError string `yaml:"on_store_error"`
	// StoreTimeout bounds each store call.
	StoreTimeout config.Duration `yaml:"store_timeout"`
	// Sync is exact (one store call per request) or lease (tokens taken
	// from the shared bucket in batches and admitted locally).
	Sync string `yaml:"sync"`

	Meta config.Meta `yaml:"-"`
}

// headerMode selects the response headers.
type headerMode uint8

const (
	headersBoth headerMode = iota
	headersIETF
	headersLegacy
	headersOff
)

var headerModes = map[string]headerMode{
	"both": headersBoth, "ietf": headersIETF, "legacy": headersLegacy, "off": headersOff,
}

// partKind is one component of a bucket key.
type partKind uint8

const (
	partIP partKind = iota
	partUser
	partRoute
	partHeader
)

type keyPart struct {
	kind   partKind
	header []byte // partHeader: the header name
}

// Factory builds ratelimit plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// Build implements plugins.Factory: it decodes and checks the settings and
// compiles the key layout and constant header values.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	if env == nil || env.Store == nil {
		return nil, sec.Errorf("", "no store to keep rate-limit buckets in")
	}
	s := Settings{
		Cost:         1,
		Headers:      "both",
		OnStoreError: "allow",
		StoreTimeout: config.Duration(DefaultStoreTimeout),
		Sync:         SyncExact,
	}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	l, err := parse(sec, &s, env.Route)
	if err != nil {
		return nil, err
	}
	if !env.Authenticated {
		for _, w := range headerKeyWarnings(sec, s.Key) {
			env.Warning(w)
		}
	}
	l.store = env.Store
	_, l.local = env.Store.(store.Local)
	l.rejected = metrics.ForRoute(env.Route).RateLimitRejected()
	l.storeErrors = metrics.StoreErrors(Kind)
	logger := env.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	l.log = logger.With(zap.String("plugin", Kind), zap.String("route", env.Route),
		zap.String("on_store_error", s.OnStoreError))
	if l.sync == SyncLease && !l.local {
		// With a store that cannot lease (the in-process one), lease is
		// exact: every take is already local.
		if lr, ok := store.LeaserOf(env.Store); ok {
			l.lease = lease.New(lr, lease.Options{Timeout: l.timeout, OnError: l.backgroundFailed})
			l.store = l.lease
		}
	}
	return l, nil
}

// parse checks s (decoded from sec) and compiles a Limiter without its
// store and metrics. Every mistake is reported, joined.
func parse(sec config.Section, s *Settings, route string) (*Limiter, error) {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, sec.Errorf(field, format, args...)) }

	parts, perrs := parseKey(sec, s.Key)
	errs = append(errs, perrs...)

	switch {
	case !s.Meta.Has("limit"):
		bad("limit", "is required: the number of tokens added per period")
	case s.Limit < 1:
		bad("limit", "must be at least 1, got %d", s.Limit)
	}
	period := s.Period.D()
	switch {
	case !s.Meta.Has("period"):
		bad("period", "is required, e.g. 1s, 1m or 1h")
	case period <= 0:
		bad("period", "must be a positive duration, got %v", period)
	case period < time.Millisecond:
		bad("period", "must be at least 1ms, got %v", period)
	}
	if !s.Meta.Has("burst") {
		s.Burst = s.Limit
	}
	burstOK := s.Burst >= 1
	if s.Meta.Has("burst") && !burstOK {
		bad("burst", "must be at least 1, got %d", s.Burst)
	}
	if us := period.Microseconds(); burstOK && us > 0 && s.Burst > MaxBucketUnits/us {
		bad("burst", "%d is too large for period %v: at most %d", s.Burst, period, MaxBucketUnits/us)
	}
	switch {
	case s.Cost < 1:
		bad("cost", "must be at least 1, got %d", s.Cost)
	case burstOK && s.Cost > s.Burst:
		bad("cost", "cost %d is larger than burst %d: no request could ever pass", s.Cost, s.Burst)
	}
	name := route
	if s.Meta.Has("bucket") {
		if s.Bucket == "" {
			bad("bucket", "must not be empty")
		}
		name = s.Bucket
	}
	mode, ok := headerModes[s.Headers]
	if !ok {
		bad("headers", "must be one of both, ietf, legacy or off, got %q", s.Headers)
	}
	var failOpen bool
	switch s.OnStoreError {
	case "allow":
		failOpen = true
	case "deny":
	default:
		bad("on_store_error", "must be allow or deny, got %q", s.OnStoreError)
	}
	if s.StoreTimeout.D() <= 0 {
		bad("store_timeout", "must be a positive duration, got %v", s.StoreTimeout.D())
	}
	if s.Sync != SyncExact && s.Sync != SyncLease {
		msg := "must be exact or lease, got " + strconv.Quote(s.Sync)
		if c := config.Closest(s.Sync, []string{SyncExact, SyncLease}); c != "" {
			msg += ", did you mean " + strconv.Quote(c) + "?"
		}
		bad("sync", "%s", msg)
	}
	if len(errs) > 0 {
		return nil, config.SortErrors(errors.Join(errs...))
	}

	l := &Limiter{
		route:    route,
		name:     name,
		parts:    parts,
		rate:     store.Rate{Limit: s.Limit, Period: period, Burst: s.Burst},
		cost:     s.Cost,
		mode:     mode,
		failOpen: failOpen,
		timeout:  s.StoreTimeout.D(),
		sync:     s.Sync,
	}
	l.prefix = appendEscaped(nil, []byte(name))
	l.routePart = appendEscaped(nil, []byte(route))
	for _, p := range parts {
		if p.kind == partUser {
			l.requires = []string{plugins.Identity}
		}
	}
	quoted := sfString(name)
	l.policy = []byte(quoted + ";q=" + strconv.FormatInt(s.Limit, 10) + ";w=" + strconv.FormatInt(ceilSeconds(period), 10))
	l.statePrefix = []byte(quoted + ";r=")
	l.burstValue = []byte(strconv.FormatInt(s.Burst, 10))
	return l, nil
}

// headerKeyWarnings warns about each header:NAME part of a valid key
// setting: without an authentication plugin before the limiter, the header
// is whatever the client says, and a new value is a new, full bucket.
func headerKeyWarnings(sec config.Section, n *yaml.Node) []*config.Warning {
	if n == nil {
		return nil
	}
	path := config.JoinPath(sec.Path, "key")
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []*config.Warning
	for i, it := range items {
		name, ok := strings.CutPrefix(it.Value, "header:")
		if it.Kind != yaml.ScalarNode || !ok {
			continue
		}
		ipath := path
		if n.Kind == yaml.SequenceNode {
			ipath = config.IndexPath(path, i)
		}
		name = strings.TrimSpace(name)
		out = append(out, config.Warnf(sec.File, it, ipath, fmt.Sprintf(
			"a limit keyed on %s is advisory: no authentication plugin (jwt or api-key without optional) comes before this ratelimit, "+
				"so a client gets a fresh bucket by sending another %s value; authenticate first, or key on ip or user", name, name)))
	}
	return out
}

// parseKey compiles the key setting: one kind or a list of kinds.
func parseKey(sec config.Section, n *yaml.Node) ([]keyPart, []error) {
	if n == nil {
		return []keyPart{{kind: partIP}}, nil
	}
	path := config.JoinPath(sec.Path, "key")
	var items []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		items = n.Content
		if len(items) == 0 {
			return nil, []error{config.Errorf(sec.File, n, path, "must name at least one of ip, user, route or header:NAME")}
		}
	default:
		return nil, []error{config.Errorf(sec.File, n, path, "expected a key kind or a list of them, got a mapping")}
	}
	var parts []keyPart
	var errs []error
	seen := map[string]bool{}
	for i, it := range items {
		ipath := path
		if n.Kind == yaml.SequenceNode {
			ipath = config.IndexPath(path, i)
		}
		fail := func(msg string) { errs = append(errs, config.Errorf(sec.File, it, ipath, msg)) }
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			fail("expected ip, user, route or header:NAME")
			continue
		}
		v := it.Value
		canon := strings.ToLower(v)
		var p keyPart
		switch {
		case v == "ip":
			p.kind = partIP
		case v == "user":
			p.kind = partUser
		case v == "route":
			p.kind = partRoute
		case strings.HasPrefix(v, "header:"):
			name := strings.TrimSpace(strings.TrimPrefix(v, "header:"))
			if !validHeaderName(name) {
				fail("header: needs a header name, e.g. header:X-API-Key, got " + strconv.Quote(v))
				continue
			}
			p = keyPart{kind: partHeader, header: []byte(name)}
			canon = "header:" + strings.ToLower(name)
		default:
			msg := "unknown key kind " + strconv.Quote(v) + " (expected ip, user, route or header:NAME)"
			if c := config.Closest(v, []string{"ip", "user", "route"}); c != "" {
				msg += ", did you mean " + strconv.Quote(c) + "?"
			}
			fail(msg)
			continue
		}
		if seen[canon] {
			fail("duplicate key kind " + strconv.Quote(v))
			continue
		}
		seen[canon] = true
		parts = append(parts, p)
	}
	return parts, errs
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sfString quotes s as a structured-field string (RFC 8941): printable
// ASCII with " and \ escaped; other bytes are replaced by '?'.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Limiter is a compiled ratelimit plugin for one route.
type Limiter struct {
	store store.Limiter
	local bool
	sync  string
	// lease is the store with sync: lease on a store that can lease.
	lease   *lease.Limiter
	timeout time.Duration
	route   string
	name    string // policy and bucket name
	prefix  []byte // escaped bucket name, the start of every key
	// routePart is the escaped route name, the key's route component.
	routePart []byte
	parts     []keyPart
	rate      store.Rate
	cost      int64
	mode      headerMode
	failOpen  bool
	requires  []string

	policy      []byte // RateLimit-Policy value
	statePrefix []byte // RateLimit value up to r=
	burstValue  []byte // RateLimit-Limit value

	rejected    *vm.Counter
	storeErrors *vm.Counter
	log         *zap.Logger
	logGate     logGate
}

var (
	_ plugins.Plugin         = (*Limiter)(nil)
	_ plugins.ResponseHook   = (*Limiter)(nil)
	_ plugins.Requirer       = (*Limiter)(nil)
	_ plugins.StoreDependent = (*Limiter)(nil)
)

// Requires implements plugins.Requirer: a key with user needs an identity
// plugin (jwt or api-key) earlier in the chain (an optional one is fine: anonymous requests are
// keyed by IP).
func (l *Limiter) Requires() []string { return l.requires }

// Close implements plugins.Plugin. The store belongs to the gateway; with
// sync: lease, the plugin's leases go back to it (at reload and shutdown).
func (l *Limiter) Close() error {
	if l.lease != nil {
		return l.lease.Close()
	}
	return nil
}

// backgroundFailed counts and (rarely) logs a failed store call the lease
// limiter made on its own (a renewal ahead of need or a give-back): no
// request waited for it.
func (l *Limiter) backgroundFailed(err error) {
	l.storeErrors.Inc()
	if suppressed, ok := l.logGate.open(time.Now()); ok {
		l.log.Warn("rate-limit lease call failed", zap.Error(err), zap.Int64("suppressed", suppressed))
	}
}

// FailsClosedOnStoreError implements plugins.StoreDependent: true with
// on_store_error: deny (the default is allow).
func (l *Limiter) FailsClosedOnStoreError() bool { return !l.failOpen }
