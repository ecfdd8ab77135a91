// Package schemagen generates, from the Go configuration structs, the JSON
// Schema of gateway.yaml (configs/gateway.schema.json, draft 2020-12), the
// configuration reference (docs/configuration.md) and the key tables of the
// plugin reference (docs/plugins.md). The structs are walked the way
// config.DecodeStrict walks them (yaml tags, `yaml:"-"` skipped), so a key
// the loader accepts is a key the schema and the reference describe.
//
// Regenerate with
//
//	go generate ./internal/schemagen
//
// The package's tests fail when a committed file differs from what the
// generator produces, or when a struct field and a schema property do not
// correspond one to one.
package schemagen

//go:generate go run ./cmd/schemagen -root ../..

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
	"github.com/gatewayd/gatewayd/pkg/plugins/blacklist"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/plugins/compress"
	"github.com/gatewayd/gatewayd/pkg/plugins/cors"
	"github.com/gatewayd/gatewayd/pkg/plugins/headers"
	"github.com/gatewayd/gatewayd/pkg/plugins/ipfilter"
	"github.com/gatewayd/gatewayd/pkg/plugins/jwt"
	"github.com/gatewayd/gatewayd/pkg/plugins/ratelimit"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/plugins/secheaders"
	"github.com/gatewayd/gatewayd/pkg/store"
	"gopkg.in/yaml.v3"
)

// Paths of the generated files, relative to the module root.
const (
	SchemaPath    = "configs/gateway.schema.json"
	ReferencePath = "docs/configuration.md"
	PluginsPath   = "docs/plugins.md"
)

// ErrUndocumented reports a configuration key without an entry in the
// documentation table, or an entry without a key.
var ErrUndocumented = errors.New("schemagen: documentation table and structs differ")

// EnvPattern matches a ${VAR} or ${VAR:-default} reference, as the loader
// expands them.
const EnvPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// DurationPattern matches the duration strings config.ParseDuration accepts
// (apart from the bare 0, which YAML reads as an integer).
const DurationPattern = `^\s*(0|` + durGo + `|` + durNum + `d(` + durNum + durUnit + `)*)\s*$`

const (
	durNum  = `([0-9]+(\.[0-9]*)?|\.[0-9]+)`
	durUnit = `(ns|us|µs|μs|ms|s|m|h)`
	durGo   = `\+?(` + durNum + durUnit + `)+`
)

// SizePattern matches the size strings config.ParseSize accepts.
const SizePattern = `^\s*\+?[0-9]+\s*(KiB|MiB|GiB|KB|MB|GB|K|M|G|B)?\s*$`

// Plugin pairs a plugin kind with its settings struct, holding the values
// the plugin's factory starts from before decoding a section.
type Plugin struct {
	Kind     string
	Defaults any
}

// Plugins returns the built-in plugin kinds and their settings.
func Plugins() []Plugin {
	return []Plugin{
		{requestid.Factory{}.Kind(), requestid.Settings{Header: requestid.DefaultHeader}},
		{jwt.Kind, jwt.Settings{
			Algorithms:    []string{jwt.DefaultAlgorithm},
			JWKSRefresh:   config.Duration(jwt.DefaultJWKSRefresh),
			JWKSRefetch:   config.Duration(jwt.DefaultJWKSRefetch),
			Typ:           []string{jwt.DefaultType},
			TypClaim:      jwt.DefaultTypClaim,
			RolesClaim:    jwt.DefaultRolesClaim,
			Leeway:        config.Duration(jwt.DefaultLeeway),
			MaxTokenBytes: jwt.DefaultMaxTokenBytes,
			CacheSize:     jwt.DefaultCacheSize,
			CacheTTL:      config.Duration(jwt.DefaultCacheTTL),
		}},
		{apikey.Kind, apikey.Settings{Header: apikey.DefaultHeader, ForwardHeader: apikey.DefaultForwardHeader}},
		{blacklist.Kind, blacklist.Settings{
			OnStoreError: blacklist.Deny,
			CacheTTL:     config.Duration(blacklist.DefaultCacheTTL),
			StoreTimeout: config.Duration(blacklist.DefaultStoreTimeout),
		}},
		{rbac.Kind, rbac.Settings{}},
		{ratelimit.Kind, ratelimit.Settings{
			Cost:         1,
			Headers:      "both",
			OnStoreError: "allow",
			StoreTimeout: config.Duration(ratelimit.DefaultStoreTimeout),
			Sync:         ratelimit.SyncExact,
		}},
		{cors.Kind, cors.Settings{AllowedMethods: cors.DefaultMethods}},
		{secheaders.Kind, secheaders.Settings{
			FrameOptions:       secheaders.DefaultFrameOptions,
			ContentTypeNosniff: true,
			ReferrerPolicy:     secheaders.DefaultReferrerPolicy,
		}},
		{ipfilter.Kind, ipfilter.Settings{}},
		{headers.Kind, headers.Settings{}},
		{compress.Kind, compress.Settings{
			Types:     compress.DefaultTypes,
			MinSize:   compress.DefaultMinSize,
			Level:     compress.DefaultLevel,
			Encodings: compress.DefaultEncodings,
		}},
	}
}

// section is one mapping of the file, backed by a Go struct: a $defs entry
// of the schema and a table of the reference.
type section struct {
	def      string
	title    string
	intro    string
	typ      reflect.Type
	defaults reflect.Value
	// nullable: an empty value (`server:`) is accepted and means "all
	// defaults" (or, for a pointer, "absent").
	nullable bool
	// kind is the plugin kind of a plugin settings section.
	kind string
	// extra holds keywords added to the section's schema.
	extra  object
	fields []*field
}

// field is one key of a section.
type field struct {
	key      string
	doc      fieldDoc
	typeName string
	schema   object
	// def is the JSON value of the key's default, when it is a plain value.
	def     any
	defText string
}

// model is everything the outputs are rendered from.
type model struct {
	sections []*section
	byDef    map[string]*section
	byType   map[reflect.Type]*section
	plugins  []Plugin
	used     map[string]bool
}

// derivedDefaults parses a minimal file with the real loader, so the
// defaults in the schema and the reference are the ones it applies.
func derivedDefaults() (*config.Config, error) {
	const minimal = `
upstreams:
  u: { targets: ["http://127.0.0.1:1"], health_check: {} }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: u
`
	cfg, err := config.Parse("defaults.yaml", []byte(minimal))
	if err != nil {
		return nil, fmt.Errorf("schemagen: parse the minimal configuration: %w", err)
	}
	return cfg, nil
}

func newModel() (*model, error) {
	cfg, err := derivedDefaults()
	if err != nil {
		return nil, err
	}
	up := cfg.Upstreams["u"]
	var auth config.Auth
	auth.ApplyDefaults()
	cache := (&config.Redis{}).CacheEnabled()
	rd := config.Redis{
		ClientSideCache: &cache,
		DialTimeout:     config.Duration(config.DefaultRedisDialTimeout),
		CommandTimeout:  config.Duration(config.DefaultRedisCommandTimeout),
		TopologyRefresh: config.Duration(config.DefaultRedisTopologyRefresh),
		MaxInFlight:     store.DefaultMaxInFlight,
		BreakerFailures: store.DefaultBreakerFailures,
		BreakerCooldown: config.Duration(store.DefaultBreakerCooldown),
	}

	m := &model{byDef: map[string]*section{}, byType: map[reflect.Type]*section{}, plugins: Plugins(), used: map[string]bool{}}
	add := func(s *section) {
		if !s.defaults.IsValid() {
			s.defaults = reflect.Zero(s.typ)
		}
		m.sections = append(m.sections, s)
		m.byDef[s.def] = s
		m.byType[s.typ] = s
	}
	add(&section{def: "gateway", title: "Top level", typ: reflect.TypeFor[config.Config](), defaults: reflect.ValueOf(*cfg),
		intro: "The keys at the top of gateway.yaml. Only `routes` (and the upstreams they name) must be written."})
	add(&section{def: "admin", title: "admin", typ: reflect.TypeFor[config.Admin](), defaults: reflect.ValueOf(cfg.Admin), nullable: true,
		intro: "The admin listener serves `GET /metrics` (Prometheus text), `GET /healthz` (200 while the process runs), `GET /readyz` (503 while draining, or when the store does not answer a ping within 500ms and either a plugin of the live configuration fails closed on store errors or `readiness_requires_store` is set), `POST /-/reload` and, with `pprof: true`, Go's profiles under `/debug/pprof/`."})
	add(&section{def: "server", title: "server", typ: reflect.TypeFor[config.Server](), defaults: reflect.ValueOf(cfg.Server), nullable: true,
		intro: "The client-facing listener. `trusted_proxies`, `shutdown_timeout` and `shutdown_delay` take effect on reload; the other keys when the process restarts (a reload that changes this section logs that a restart is needed)."})
	add(&section{def: "tls", title: "tls", typ: reflect.TypeFor[config.TLS](), nullable: true,
		defaults: reflect.ValueOf(config.TLS{MinVersion: config.DefaultTLSMinVersion, ClientAuth: config.DefaultTLSClientAuth, ALPN: []string{config.ALPNHTTP11}}),
		intro:    "TLS termination on the client listener (see [tls.md](tls.md)). The certificate, key and client CA files are read at start and on every reload: new handshakes get the new ones, open connections keep theirs; a reload that cannot load them fails and the old ones keep serving. `gateway_tls_certificate_expiry_seconds{name}` reports the seconds left on each certificate."})
	add(&section{def: "tlsCertificate", title: "tls.certificates[]", typ: reflect.TypeFor[config.TLSCertificate](),
		intro: "One certificate and its key."})
	add(&section{def: "log", title: "log", typ: reflect.TypeFor[config.Log](), defaults: reflect.ValueOf(cfg.Log), nullable: true,
		intro: "Logs are JSON lines (or console text) on stderr. Tokens and passwords are never logged."})
	add(&section{def: "runtime", title: "runtime", typ: reflect.TypeFor[config.Runtime](), nullable: true,
		intro: "The Go runtime's garbage collector. Absent: what the `GOGC` and `GOMEMLIMIT` environment variables say applies, else `gc_percent` 25 and no memory limit. See [operations.md](operations.md#memory)."})
	add(&section{def: "tracing", title: "tracing", typ: reflect.TypeFor[config.Tracing](),
		defaults: reflect.ValueOf(config.Tracing{SampleRatio: config.DefaultSampleRatio, ServiceName: config.DefaultServiceName}), nullable: true,
		intro: "OpenTelemetry tracing (see [observability.md](observability.md#tracing)). Absent: off, at no cost, and the client's trace context still reaches the upstream. The whole section applies on reload: requests already in flight finish on the old settings, whose queued spans are then exported."})
	add(&section{def: "redis", title: "redis", typ: reflect.TypeFor[config.Redis](), defaults: reflect.ValueOf(rd), nullable: true,
		intro: "Absent (or empty): an in-process store, for one instance only. Present: every instance that names the same Redis shares rate-limit buckets and revocations; with `auth:`, users and sessions live there too. The gateway connects at startup and fails to start when Redis is unreachable."})
	add(&section{def: "redisSentinel", title: "redis.sentinel", typ: reflect.TypeFor[config.RedisSentinel](), nullable: true,
		intro: "Redis Sentinel: the gateway asks the sentinels for the master of `master_set` and follows failovers. With `sentinel`, `redis.addrs` stays empty and `redis.cluster` false."})
	add(&section{def: "redisTLS", title: "redis.tls", typ: reflect.TypeFor[config.RedisTLS](), nullable: true,
		intro: "Present (even empty: `tls: {}`), every connection to Redis, sentinels included, uses TLS 1.2 or later, verified against the system roots unless `ca_file` is set."})
	add(&section{def: "upstream", title: "upstreams.NAME", typ: reflect.TypeFor[config.Upstream](), defaults: reflect.ValueOf(*up),
		intro: "One pool of targets. On reload, an upstream keeps its connections and health state (active checks, ejections) unless its targets or connection settings changed: weights, `balance`, `retries`, `retry_on` and `retry_budget` change without touching them (a new `retry_budget` window starts)."})
	add(&section{def: "upstreamTarget", title: "upstreams.NAME.targets[]", typ: reflect.TypeFor[config.Target](),
		defaults: reflect.ValueOf(config.Target{Weight: 1}),
		intro:    "A target is a URL string (weight 1) or this mapping. Each target gets a share of the requests equal to its weight divided by the sum of the weights of the targets taking traffic: a target that fails its active health checks or is ejected drops out, and the others share its weight in proportion to theirs until it is back. `round_robin` interleaves the targets by weight (strictly in turn when the weights are equal); `least_conn` picks the fewest requests in flight per unit of weight, ties broken by weight. New weights take effect on reload and keep the upstream's connections and health state."})
	add(&section{def: "retryBudget", title: "upstreams.NAME.retry_budget", typ: reflect.TypeFor[config.RetryBudget](), defaults: reflect.ValueOf(*up.RetryBudget), nullable: true,
		intro: "Retries are allowed only while the retries of the last `window` number at most `ratio` times the requests that could have been retried in it, plus `min_per_second` for every second of the window (so an upstream with little traffic can still retry). A retry over the budget is not made: the client gets the last answer (the 5xx, or the 502/503/504 of the connect failure). This keeps retries from multiplying the load on an upstream that is failing: at the defaults, 20 % more attempts at most, plus 10 per second. Retries made are counted in `gateway_upstream_retries_total{upstream}`."})
	add(&section{def: "healthCheck", title: "upstreams.NAME.health_check", typ: reflect.TypeFor[config.HealthCheck](), defaults: reflect.ValueOf(*up.HealthCheck), nullable: true,
		intro: "Active health checks. Written (even empty: `health_check: {}`), they run with the defaults below."})
	add(&section{def: "upstreamTLS", title: "upstreams.NAME.tls", typ: reflect.TypeFor[config.UpstreamTLS](), nullable: true,
		intro: "TLS to the upstream's `https://` targets (every target must then be https; an upstream never mixes http and https targets). Without this section https targets are verified against the system roots with each target's host as the name. The files are read at start and again on every reload (SIGHUP, `POST /-/reload`): a rotated certificate takes effect on the next reload, and a file that is missing, not PEM, or a key that does not match its certificate fails the reload while the old configuration keeps serving. A certificate that fails verification answers the client 502 and logs the reason with the upstream and target."})
	add(&section{def: "auth", title: "auth", typ: reflect.TypeFor[config.Auth](), defaults: reflect.ValueOf(auth), nullable: true,
		intro: "The in-process auth service (signup, login, refresh, logout; see [auth-api.md](auth-api.md)), reached by routes whose upstream is `builtin:auth`. `authd` reads the same section. Without `redis:`, users and sessions are kept in `users_file`."})
	add(&section{def: "lockout", title: "auth.lockout", typ: reflect.TypeFor[config.Lockout](), defaults: reflect.ValueOf(auth.Lockout), nullable: true,
		intro: "Failed logins are counted per email address."})
	add(&section{def: "route", title: "routes[]", typ: reflect.TypeFor[config.Route](),
		intro: "A route sends the requests it matches through its plugin chain to its upstream. Paths are normalised first (`..`, `//`, percent-decoding), and the upstream receives the normalised path."})
	add(&section{def: "match", title: "routes[].match", typ: reflect.TypeFor[config.Match](),
		extra: object{{"oneOf", []any{object{{"required", []string{"path"}}}, object{{"required", []string{"path_prefix"}}}}}},
		intro: "Give `path` or `path_prefix` (exactly one); `host`, `methods` and `headers` narrow the match further. The most specific match decides: host first (exact, then wildcard, then none); then the path pattern, compared segment by segment from the left, where a literal segment beats a `{name}`, which beats a catch-all (a `path_prefix` or a final `{name...}`), so an exact path beats everything and a longer prefix beats a shorter one; then, at one pattern, the routes with more header conditions. A route whose header conditions do not hold is not a candidate. The method is checked only against the candidates at the most specific pattern, so a method they do not accept is a 405 with `Allow`, never a request for a less specific route. Two routes that are equally specific for some request are an error naming both: same host, same pattern (parameter names aside; `/files/{path...}` is the same as `path_prefix: /files/`), overlapping methods, as many header conditions, and conditions one request can carry together. See [Routing](#def-routing)."})
	add(&section{def: "rewrite", title: "routes[].rewrite", typ: reflect.TypeFor[config.Rewrite](), nullable: true,
		intro: "Changes the path sent upstream. The upstream sees exactly the template filled with the captured parameters, in normal form: a `{name}` value is one segment and never `.` or `..` (dot segments and encoded slashes, `%2F`, are resolved before matching, so `/v1/items/..%2Fadmin` is `/v1/admin` and does not match `/v1/items/{id}`)."})
	for _, p := range m.plugins {
		add(&section{def: "plugin-" + p.Kind, title: p.Kind, kind: p.Kind, typ: reflect.TypeOf(p.Defaults), defaults: reflect.ValueOf(p.Defaults), nullable: true,
			intro: "Settings of the `" + p.Kind + "` plugin. See [plugins.md](plugins.md#" + p.Kind + ") for its behaviour and metrics."})
		switch p.Kind {
		case jwt.Kind:
			add(&section{def: "jwtProvider", title: "jwt providers[]", typ: reflect.TypeFor[jwt.Provider](),
				defaults: reflect.ValueOf(jwt.Provider{
					Algorithms:  []string{jwt.DefaultAlgorithm},
					JWKSRefresh: config.Duration(jwt.DefaultJWKSRefresh),
					JWKSRefetch: config.Duration(jwt.DefaultJWKSRefetch),
					Typ:         []string{jwt.DefaultType},
					TypClaim:    jwt.DefaultTypClaim,
					RolesClaim:  jwt.DefaultRolesClaim,
				}),
				intro: "One identity provider of the `jwt` plugin: the token's `iss` selects it, and only its keys, with its algorithms, verify the token. See [identity-providers.md](identity-providers.md) for the entry of each provider family."})
		case rbac.Kind:
			add(&section{def: "rbacRule", title: "rbac rules[]", typ: reflect.TypeFor[rbac.Rule](),
				intro: "One per-method requirement of the `rbac` plugin."})
		case secheaders.Kind:
			add(&section{def: "hsts", title: "security-headers hsts", typ: reflect.TypeFor[secheaders.HSTS](),
				defaults: reflect.ValueOf(secheaders.HSTS{MaxAge: config.Duration(secheaders.DefaultHSTSMaxAge)}),
				intro:    "The mapping form of `hsts`."})
		case headers.Kind:
			add(&section{def: "headerEdits", title: "headers request/response", typ: reflect.TypeFor[headers.Edits](),
				intro: "The edits of one direction of the `headers` plugin, applied in the order remove, set, add. A header may be named once per direction (names compared ignoring case and with `_` as `-`)."})
		}
	}
	if err := m.checkKinds(); err != nil {
		return nil, err
	}
	var errs []error
	for _, s := range m.sections {
		errs = append(errs, m.walk(s))
	}
	for key := range docs {
		if !m.used[key] {
			errs = append(errs, fmt.Errorf("%w: %s is documented but no struct has that key", ErrUndocumented, key))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// checkKinds fails when a registered plugin has no settings here, so a new
// plugin cannot be missing from the schema.
func (m *model) checkKinds() error {
	var have []string
	for _, p := range m.plugins {
		have = append(have, p.Kind)
	}
	sort.Strings(have)
	want := builtin.Registry().Kinds()
	if strings.Join(have, ",") != strings.Join(want, ",") {
		return fmt.Errorf("schemagen: plugin kinds %v, but the registry has %v: add the new plugin's settings to Plugins", have, want)
	}
	return nil
}

// YAMLKey returns the key of a struct field as config.DecodeStrict reads
// it, or "" when the field is not read from YAML.
func YAMLKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

var (
	durationType = reflect.TypeFor[config.Duration]()
	sizeType     = reflect.TypeFor[config.Size]()
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
)

func (m *model) walk(s *section) error {
	var errs []error
	for i := 0; i < s.typ.NumField(); i++ {
		sf := s.typ.Field(i)
		key := YAMLKey(sf)
		if key == "" {
			continue
		}
		docKey := s.def + "." + key
		d, ok := docs[docKey]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s (%s.%s) has no entry in docs", ErrUndocumented, docKey, s.typ, sf.Name))
			continue
		}
		m.used[docKey] = true
		f := &field{key: key, doc: d}
		if err := m.fieldSchema(s, sf, f); err != nil {
			errs = append(errs, fmt.Errorf("schemagen: %s: %w", docKey, err))
			continue
		}
		m.setDefault(f, sf, s.defaults.Field(i))
		s.fields = append(s.fields, f)
	}
	return errors.Join(errs...)
}

func ref(def string) object { return object{{"$ref", "#/$defs/" + def}} }

func withEnv(s object) object {
	return object{{"anyOf", []any{s, ref("env")}}}
}

// stringSchema is the schema of one string value with the doc's
// constraints; a ${VAR} is accepted wherever the value is constrained.
func stringSchema(d fieldDoc) object {
	switch {
	case len(d.Enum) > 0:
		return withEnv(object{{"enum", d.Enum}})
	case d.Pattern != "":
		return withEnv(object{{"type", "string"}, {"pattern", d.Pattern}})
	}
	return object{{"type", "string"}}
}

func intSchema(d fieldDoc) (object, error) {
	s := object{{"type", "integer"}}
	if len(d.Enum) > 0 {
		var vals []int64
		for _, e := range d.Enum {
			var v int64
			if _, err := fmt.Sscan(e, &v); err != nil {
				return nil, fmt.Errorf("enum value %q is not an integer", e)
			}
			vals = append(vals, v)
		}
		s = object{{"enum", vals}}
	}
	if d.Min != nil {
		s.set("minimum", *d.Min)
	}
	if d.Max != nil {
		s.set("maximum", *d.Max)
	}
	return withEnv(s), nil
}

func anchor(def string) string { return "#def-" + def }

func (m *model) fieldSchema(s *section, sf reflect.StructField, f *field) error {
	d := f.doc
	t := sf.Type
	if t == nodePtrType || (t.Kind() == reflect.Map || t.Kind() == reflect.Slice) && t.Elem() == nodePtrType {
		return m.nodeField(s, sf, f)
	}
	switch {
	case t == durationType:
		f.schema, f.typeName = ref("duration"), "[duration](#duration)"
		return nil
	case t == sizeType:
		f.schema, f.typeName = ref("size"), "[size](#size)"
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		f.schema, f.typeName = stringSchema(d), "string"
		if len(d.Enum) > 0 {
			f.typeName = "one of " + codeList(d.Enum)
		}
	case reflect.Bool:
		f.schema, f.typeName = withEnv(object{{"type", "boolean"}}), "boolean"
	case reflect.Float32, reflect.Float64:
		sc := object{{"type", "number"}}
		if d.Min != nil {
			sc.set("minimum", *d.Min)
		}
		if d.Max != nil {
			sc.set("maximum", *d.Max)
		}
		f.schema, f.typeName = withEnv(sc), "number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		sc, err := intSchema(d)
		if err != nil {
			return err
		}
		f.schema, f.typeName = sc, "integer"
	case reflect.Pointer:
		switch e := t.Elem(); {
		case e.Kind() == reflect.Bool:
			f.schema, f.typeName = withEnv(object{{"type", "boolean"}}), "boolean"
		case e.Kind() == reflect.Struct:
			return m.structField(e, f, true)
		default:
			return fmt.Errorf("unsupported pointer type %s", t)
		}
	case reflect.Struct:
		return m.structField(t, f, m.byType[t] != nil && m.byType[t].nullable)
	case reflect.Slice:
		e := t.Elem()
		if e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		switch {
		case s.def == "upstream" && sf.Name == "RetryOn":
			// YAML reads 503 as a number, which the loader takes as "503".
			f.schema = object{{"type", listType(d)}, {"items", object{{"anyOf", []any{
				object{{"const", config.RetryConnect}},
				object{{"type", "integer"}, {"minimum", 500}, {"maximum", 599}},
				stringSchema(d),
			}}}}}
			f.typeName = "list of `connect` and status codes"
		case e == reflect.TypeFor[config.Target]():
			item := ref(m.byType[e].def)
			item.set("type", "object")
			f.schema = object{{"type", listType(d)}, {"items", object{{"anyOf", []any{stringSchema(d), item}}}}}
			f.typeName = "list of URLs or [" + m.byType[e].title + "](" + anchor(m.byType[e].def) + ")"
		case e.Kind() == reflect.String:
			f.schema = object{{"type", listType(d)}, {"items", stringSchema(d)}}
			f.typeName = "list of strings"
			if len(d.Enum) > 0 {
				f.typeName = "list of " + codeList(d.Enum)
			}
		case e.Kind() == reflect.Struct && m.byType[e] != nil:
			sec := m.byType[e]
			item := ref(sec.def)
			item.set("type", "object")
			f.schema = object{{"type", listType(d)}, {"items", item}}
			f.typeName = "list of [" + sec.title + "](" + anchor(sec.def) + ")"
		default:
			return fmt.Errorf("unsupported list type %s", t)
		}
	case reflect.Map:
		e := t.Elem()
		if e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		switch {
		case t.Key().Kind() != reflect.String:
			return fmt.Errorf("unsupported map type %s", t)
		case e.Kind() == reflect.String:
			f.schema = object{{"type", []string{"object", "null"}}, {"additionalProperties", object{{"type", "string"}}}}
			f.typeName = "map of string to string"
		case e.Kind() == reflect.Struct && m.byType[e] != nil:
			sec := m.byType[e]
			val := ref(sec.def)
			val.set("type", "object")
			f.schema = object{
				{"type", []string{"object", "null"}},
				{"propertyNames", object{{"pattern", namePattern}}},
				{"additionalProperties", val},
			}
			f.typeName = "map of name to [" + sec.title + "](" + anchor(sec.def) + ")"
		default:
			return fmt.Errorf("unsupported map type %s", t)
		}
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	if t.Kind() == reflect.Slice && d.Required {
		f.schema.set("minItems", 1)
	}
	return nil
}

// listType is the JSON type of a list: an empty value is accepted (and
// means an empty list) unless the list is required.
func listType(d fieldDoc) any {
	if d.Required {
		return "array"
	}
	return []string{"array", "null"}
}

func (m *model) structField(t reflect.Type, f *field, nullable bool) error {
	sec := m.byType[t]
	if sec == nil {
		return fmt.Errorf("struct %s has no section: add it to newModel", t)
	}
	f.schema = ref(sec.def)
	if !nullable {
		f.schema.set("type", "object")
	}
	f.typeName = "mapping: [" + sec.title + "](" + anchor(sec.def) + ")"
	return nil
}

// nodeField describes the fields whose YAML is decoded later, by the
// gateway's builder or a plugin, from a raw *yaml.Node.
func (m *model) nodeField(s *section, sf reflect.StructField, f *field) error {
	switch {
	case s.typ == reflect.TypeFor[config.Config]() && sf.Name == "Plugins":
		f.schema = object{
			{"type", []string{"object", "null"}},
			{"propertyNames", object{{"pattern", namePattern}}},
			{"additionalProperties", ref("namedPlugin")},
		}
		f.typeName = "map of name to [plugin instance](#def-namedPlugin)"
	case s.typ == reflect.TypeFor[config.Route]() && sf.Name == "Plugins":
		f.schema = object{{"type", []string{"array", "null"}}, {"items", ref("pluginEntry")}}
		f.typeName = "list of [plugin entries](#def-pluginEntry)"
	case s.kind == ratelimit.Kind && sf.Name == "Key":
		f.schema, f.typeName = ref("ratelimitKey"), "key kind, or list of key kinds"
		f.def, f.defText = "ip", "`ip`"
	case (s.kind == jwt.Kind || s.def == "jwtProvider") && sf.Name == "Audience":
		f.schema = object{{"anyOf", []any{
			object{{"type", "string"}, {"minLength", 1}},
			object{{"type", "array"}, {"minItems", 1}, {"items", object{{"type", "string"}, {"minLength", 1}}}},
			object{{"type", "null"}},
		}}}
		f.typeName = "string, or list of strings"
		f.defText = "not checked"
	case s.kind == secheaders.Kind && sf.Name == "HSTS":
		f.schema = object{{"anyOf", []any{object{{"type", "boolean"}}, ref("hsts"), ref("env")}}}
		f.typeName = "boolean, or mapping: [security-headers hsts](#def-hsts)"
	default:
		return fmt.Errorf("%s.%s is a raw YAML node: describe what it holds in nodeField", s.typ, sf.Name)
	}
	return nil
}

// setDefault fills the default of f from the section's defaults value.
func (m *model) setDefault(f *field, sf reflect.StructField, v reflect.Value) {
	if f.def != nil {
		return
	}
	if f.doc.Default != "" {
		f.defText = f.doc.Default
		return
	}
	t := sf.Type
	switch {
	case t.Kind() == reflect.Struct:
		f.defText = "see [" + m.byType[t].title + "](" + anchor(m.byType[t].def) + ")"
		return
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		f.defText = "absent"
		return
	case t == durationType:
		// A zero duration is written 0, which YAML reads as a number.
		if d := v.Interface().(config.Duration); d != 0 {
			f.def = FormatDuration(d)
		} else {
			f.def = 0
		}
	case t == sizeType:
		if n := int64(v.Interface().(config.Size)); n != 0 {
			f.def = config.FormatSize(n)
		} else {
			f.def = 0
		}
	case t.Kind() == reflect.String:
		if v.String() != "" {
			f.def = v.String()
		}
	case t.Kind() == reflect.Bool:
		f.def = v.Bool()
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		f.def = !v.IsNil() && v.Elem().Bool()
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		f.def = v.Int()
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		f.def = v.Float()
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String && !v.IsNil():
		f.def = v.Interface()
	}
	switch {
	case f.def != nil:
		f.defText = "`" + flowYAML(f.def) + "`"
	case f.doc.Required:
		f.defText = "none (required)"
	default:
		f.defText = "none"
	}
}

// FormatDuration writes d the way an operator would: "10s", "15m", "168h",
// "730d", "250ms"; zero is "0".
func FormatDuration(d config.Duration) string {
	const day = 24 * 60 * 60 * 1e9
	n := int64(d)
	switch {
	case n == 0:
		return "0"
	case n%day == 0 && n/day >= 30:
		return fmt.Sprint(n/day) + "d"
	case n%(3600*1e9) == 0:
		return fmt.Sprint(n/(3600*1e9)) + "h"
	case n%(60*1e9) == 0:
		return fmt.Sprint(n/(60*1e9)) + "m"
	case n%1e9 == 0:
		return fmt.Sprint(n/1e9) + "s"
	case n%1e6 == 0:
		return fmt.Sprint(n/1e6) + "ms"
	}
	return d.String()
}

func codeList(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + x + "`"
	}
	return strings.Join(out, ", ")
}
