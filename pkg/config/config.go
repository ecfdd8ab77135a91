// Package config loads gateway.yaml: it parses the file into a yaml.Node
// tree, expands ${VAR} references, decodes it strictly into typed structs,
// applies defaults and validates what can be checked without building the
// plugins. Every mistake is an *Error naming file, line and field.
package config

import (
	"gopkg.in/yaml.v3"
)

// Config is a whole gateway.yaml.
type Config struct {
	Version int    `yaml:"version"`
	Listen  string `yaml:"listen"`
	// TLS, when present, makes listen serve HTTPS.
	TLS *TLS `yaml:"tls"`
	// RedirectHTTP is an optional plain-HTTP listener that answers every
	// request with a 308 to the same URL on https (needs TLS).
	RedirectHTTP string `yaml:"redirect_http"`
	Admin        Admin  `yaml:"admin"`
	Server       Server `yaml:"server"`
	Log          Log    `yaml:"log"`
	// Runtime tunes the Go runtime's garbage collector.
	Runtime Runtime `yaml:"runtime"`
	// Tracing, when present, exports OpenTelemetry spans (absent: off).
	Tracing   *Tracing             `yaml:"tracing"`
	Redis     *Redis               `yaml:"redis"`
	Upstreams map[string]*Upstream `yaml:"upstreams"`
	Auth      *Auth                `yaml:"auth"`
	// Plugins holds named, reusable plugin settings. Each value is a mapping
	// with a "type" key; the plugin factory decodes the rest.
	Plugins map[string]*yaml.Node `yaml:"plugins"`
	Routes  []*Route              `yaml:"routes"`
	// Watch reloads the configuration when its file, or a file it names
	// that a reload re-reads (certificates, keys, key lists), changes on
	// disk, as SIGHUP does. Directories are watched, so a Kubernetes
	// ConfigMap update (a "..data" symlink swap) and an editor's atomic save
	// are seen. Changing watch itself takes effect on the next reload.
	Watch bool `yaml:"watch"`

	Meta Meta `yaml:"-"`
	// File is the path the configuration was read from.
	File string `yaml:"-"`
	// Hash is the SHA-256 of the file's bytes or, when the file names
	// certificate and key files the loader reads (upstreams.NAME.tls),
	// of the bytes and those files' contents: a reload that finds an
	// unchanged file and rotated certificates is not skipped.
	Hash [32]byte `yaml:"-"`
	// ReadFiles are the files the loader read besides the configuration
	// file (upstream TLS certificates and keys), in the order read, each
	// with the SHA-256 of its content: Hash covers them, and watch: true
	// watches them.
	ReadFiles []ReadFile `yaml:"-"`
}

// ReadFile is one file the loader read while validating a configuration.
type ReadFile struct {
	Path string
	Sum  [32]byte
}

// Admin is the admin listener (/metrics, /healthz, /readyz, /-/reload).
type Admin struct {
	Listen string `yaml:"listen"`
	// ReadinessRequiresStore makes /readyz answer 503 while the store is
	// unreachable whatever the plugins. Without it, /readyz includes the
	// store only when a plugin of the live configuration fails closed on
	// store errors (on_store_error: deny).
	ReadinessRequiresStore bool `yaml:"readiness_requires_store"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the admin
	// listener (never on the client listener). Off by default; a reload
	// turns it on or off.
	Pprof bool `yaml:"pprof"`
	Meta  Meta `yaml:"-"`
}

// Runtime tunes the Go runtime's garbage collector. Both settings apply at
// start and on reload; unset (0), what the GOGC and GOMEMLIMIT environment
// variables say applies, else DefaultGCPercent and no memory limit.
type Runtime struct {
	// GCPercent is the heap growth, in percent of the live heap, that
	// starts the next collection (GOGC): lower holds less memory at more
	// CPU spent collecting.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is a soft limit on the memory the Go runtime holds
	// (GOMEMLIMIT): the collector runs more often as the process nears
	// it, in addition to gc_percent, never stopping the process.
	MemoryLimit Size `yaml:"memory_limit"`
	Meta        Meta `yaml:"-"`
}

// Server holds the client-facing listener's limits and timeouts.
type Server struct {
	ReadTimeout  Duration `yaml:"read_timeout"`
	WriteTimeout Duration `yaml:"write_timeout"`
	IdleTimeout  Duration `yaml:"idle_timeout"`
	// HeaderTimeout bounds the wait for a request's headers: from the
	// connection's start for its first request, from the first byte for a
	// keep-alive connection's next one. ReadTimeout then covers the body.
	HeaderTimeout         Duration `yaml:"header_timeout"`
	MaxRequestHeaderBytes Size     `yaml:"max_request_header_bytes"`
	MaxRequestBodyBytes   Size     `yaml:"max_request_body_bytes"`
	// StreamRequestBodyThreshold is the largest request body read whole
	// before the request is handled; larger bodies stream to the upstream.
	StreamRequestBodyThreshold Size     `yaml:"stream_request_body_threshold"`
	ShutdownTimeout            Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long /readyz reports 503 before the listener
	// stops accepting, so load balancers notice (a pre-stop delay).
	ShutdownDelay  Duration `yaml:"shutdown_delay"`
	TrustedProxies []string `yaml:"trusted_proxies"`
	// DropUnderscoreHeaders removes every client request header whose name
	// contains '_' (nginx's underscores_in_headers off). Identity headers
	// are stripped by folded name whatever this says.
	DropUnderscoreHeaders bool `yaml:"drop_underscore_headers"`
	// MaxConnections caps concurrent client connections (0 = fasthttp default).
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps concurrent client connections from one peer
	// address (0 = no cap); peers in TrustedProxies are exempt.
	MaxConnectionsPerIP int  `yaml:"max_connections_per_ip"`
	Meta                Meta `yaml:"-"`
}

// Log configures the zap logger and the access log.
type Log struct {
	Level     string `yaml:"level"`
	Format    string `yaml:"format"`
	AccessLog *bool  `yaml:"access_log"`
	// AccessLogQuery adds the query string to the access log's path; off by
	// default, as query strings may carry secrets.
	AccessLogQuery bool `yaml:"access_log_query"`
	Meta           Meta `yaml:"-"`
}

// Tracing configures OpenTelemetry tracing: spans are exported with OTLP to
// OTLPEndpoint, and a ratio of the traces that do not come with a sampled
// parent are recorded.
type Tracing struct {
	// OTLPEndpoint is the collector: http:// or https:// for OTLP/HTTP
	// (the path defaults to /v1/traces), grpc:// (plain) or grpcs:// (TLS)
	// for OTLP/gRPC.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1 (default 1).
	// A request whose traceparent says sampled is always recorded; one
	// whose traceparent says not sampled never is.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute (default gatewayd).
	ServiceName string `yaml:"service_name"`
	// Headers are sent with every export request (e.g. an API key).
	Headers map[string]string `yaml:"headers"`
	Meta    Meta              `yaml:"-"`
}

// Upstream is a named pool of targets.
type Upstream struct {
	Targets           []Target `yaml:"targets"`
	Balance           string   `yaml:"balance"`
	ConnectTimeout    Duration `yaml:"connect_timeout"`
	Timeout           Duration `yaml:"timeout"`
	MaxConnsPerTarget int      `yaml:"max_conns_per_target"`
	Retries           int      `yaml:"retries"`
	// RetryOn lists the conditions retried: "connect" and 5xx status codes.
	RetryOn              []string     `yaml:"retry_on"`
	RetryBudget          *RetryBudget `yaml:"retry_budget"`
	HealthCheck          *HealthCheck `yaml:"health_check"`
	MaxResponseBodyBytes Size         `yaml:"max_response_body_bytes"`
	// EjectAfter consecutive connect failures take a target out for EjectFor.
	EjectAfter int      `yaml:"eject_after"`
	EjectFor   Duration `yaml:"eject_for"`
	// TLS configures the connections to https targets.
	TLS  *UpstreamTLS `yaml:"tls"`
	Meta Meta         `yaml:"-"`
}

// Target is one target of an upstream. In YAML it is either a URL string
// (weight 1) or a mapping { url, weight }.
type Target struct {
	URL string `yaml:"url"`
	// Weight is the target's share of the traffic; 0 drains it.
	Weight int  `yaml:"weight"`
	Meta   Meta `yaml:"-"`
}

// URLs returns the URLs of targets, in order.
func URLs(targets []Target) []string {
	out := make([]string, len(targets))
	for i, t := range targets {
		out[i] = t.URL
	}
	return out
}

// RetryBudget bounds an upstream's retries: within the last Window, retries
// may number at most Ratio times the retry-eligible requests plus
// MinPerSecond per second of the window.
type RetryBudget struct {
	Ratio        float64  `yaml:"ratio"`
	MinPerSecond int      `yaml:"min_per_second"`
	Window       Duration `yaml:"window"`
	Meta         Meta     `yaml:"-"`
}

// HealthCheck configures active health checks of an upstream's targets.
type HealthCheck struct {
	Path     string   `yaml:"path"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Meta     Meta     `yaml:"-"`
}

// Route is one entry of routes:.
type Route struct {
	Name     string `yaml:"name"`
	Match    Match  `yaml:"match"`
	Upstream string `yaml:"upstream"`
	// Plugins are the raw entries: a bare name or a one-key map of inline
	// settings. The gateway's builder resolves them against the registry.
	Plugins     []*yaml.Node `yaml:"plugins"`
	StripPrefix bool         `yaml:"strip_prefix"`
	// Rewrite replaces the path sent upstream.
	Rewrite      *Rewrite `yaml:"rewrite"`
	PreserveHost bool     `yaml:"preserve_host"`
	Timeout      Duration `yaml:"timeout"`
	// WebSocket lets WebSocket handshakes through: after the route's plugins
	// accept one and the upstream answers 101, bytes are tunnelled both ways.
	WebSocket bool `yaml:"websocket"`
	// WebSocketIdleTimeout closes a tunnel that carried no byte in either
	// direction for this long (default 5m).
	WebSocketIdleTimeout Duration `yaml:"websocket_idle_timeout"`
	Meta                 Meta     `yaml:"-"`
}

// Match selects the requests a route serves.
type Match struct {
	Path       string   `yaml:"path"`
	PathPrefix string   `yaml:"path_prefix"`
	Host       string   `yaml:"host"`
	Methods    []string `yaml:"methods"`
	// Headers are request headers that must all be present with exactly
	// these values (names case-insensitive).
	Headers map[string]string `yaml:"headers"`
	Meta    Meta              `yaml:"-"`
}

// HeaderKeys returns the keys of match.headers in the order they are
// written in the file (sorted when the mapping was not read from a file).
func (m *Match) HeaderKeys() []string {
	var keys []string
	if n := m.Meta.values["headers"]; n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if _, ok := m.Headers[n.Content[i].Value]; ok {
				keys = append(keys, n.Content[i].Value)
			}
		}
		if len(keys) == len(m.Headers) {
			return keys
		}
	}
	return sortedKeys(m.Headers)
}

// HeaderPos returns the node of the key name in match.headers, or the
// mapping (or match itself) when it cannot be found.
func (m *Match) HeaderPos(name string) *yaml.Node {
	n := m.Meta.Pos("headers")
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i]
			}
		}
	}
	return n
}

// Rewrite changes the request before it is sent upstream.
type Rewrite struct {
	// Path is the template of the upstream path: literal segments and the
	// parameters of match.path ("/internal/items/{id}", "/static/{path...}").
	Path string `yaml:"path"`
	Meta Meta   `yaml:"-"`
}

// BuiltinAuth is the upstream name that routes to the in-process auth service.
const BuiltinAuth = "builtin:auth"
