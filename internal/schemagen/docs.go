package schemagen

import (
	"strings"
	"unicode"
)

// fieldDoc documents one YAML key. The generator refuses a struct field
// without an entry, and an entry without a field, so the reference and the
// schema always cover exactly the keys the loader accepts.
type fieldDoc struct {
	// Desc is the description: full sentences.
	Desc string
	// Default, when set, replaces the derived default in the reference
	// (for defaults that are not a plain value, such as "the route's name").
	Default string
	// Example is a value an operator could write.
	Example any
	// Required marks keys the loader rejects when missing.
	Required bool
	// Enum lists the accepted values of a string (or of each list item).
	Enum []string
	// Pattern is an ECMA-262 (and RE2) regular expression every string value
	// (or list item) must match.
	Pattern string
	// Min and Max bound an integer.
	Min, Max *int64
}

func ptr(v int64) *int64 { return &v }

// anyCase returns a pattern matching exactly one of words, in any case.
func anyCase(words ...string) string {
	var alts []string
	for _, w := range words {
		var b strings.Builder
		for _, r := range w {
			lo, up := unicode.ToLower(r), unicode.ToUpper(r)
			if lo == up {
				b.WriteRune(r)
				continue
			}
			b.WriteString("[" + string(up) + string(lo) + "]")
		}
		alts = append(alts, b.String())
	}
	return "^(" + strings.Join(alts, "|") + ")$"
}

// referrerPattern matches `off` or a comma-separated list of policies.
func referrerPattern() string {
	p := "(" + strings.Join(referrerPolicies, "|") + ")"
	return `^(off|\s*` + p + `\s*(,\s*` + p + `\s*)*)$`
}

// Descriptions shared by the plugin-level jwt settings and providers[].
const (
	jwksURLDesc     = "JWKS URL (http or https), downloaded when the configuration is built (also by `-check`, which warns when it fails), every `jwks_refresh` (sooner when the response's `Cache-Control: max-age` says so) and when a token names an unknown `kid` (at most once every `jwks_refetch_interval`). A failed download keeps the last good set."
	jwksRefreshDesc = "Longest time between two downloads of `jwks_url` (at least `jwks_refetch_interval`); a shorter `Cache-Control: max-age` of the response refreshes sooner. Only with `jwks_url`."
	jwksRefetchDesc = "Least time between two downloads of `jwks_url` caused by tokens naming an unknown `kid`, and the floor of a `Cache-Control: max-age` (at least 1s). Only with `jwks_url`."
	audienceDesc    = "Accepted `aud` values, a string or a list: the token's `aud` (a string or a list) must hold one of them."
	typDesc         = "Accepted token types, compared with the `typ` claim and the JOSE header `typ` (either may match), case-insensitively and with an optional `application/` prefix (`at+jwt` accepts RFC 9068's `application/at+jwt`). `[]` turns the check off."
	typClaimDesc    = "Claim compared with `typ` (besides the JOSE header `typ`), named like `roles_claim`: AWS Cognito says `token_use`."
	rolesClaimDesc  = "Claim holding the roles rbac checks: a claim whose whole name matches is used as is (`https://example.com/roles`), otherwise a dotted path into nested objects (`realm_access.roles`). A string is split on spaces; a list gives its string items."
	scopesClaimDesc = "Claim holding the scopes rbac checks, read like `roles_claim`."
)

// jwtAlgorithms are the values the jwt plugin accepts in algorithms.
var jwtAlgorithms = []string{
	"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}

// httpMethods are the methods routes[].match.methods accepts.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

// referrerPolicies are the tokens of the Referrer-Policy specification.
var referrerPolicies = []string{
	"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
}

// Patterns shared by several keys.
const (
	hostPortPattern = `^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9_.-]*)?:[^:\s]+$`
	namePattern     = `^[A-Za-z0-9][A-Za-z0-9_.-]*$`
	targetPattern   = `^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s]+/?$`
	absPathPattern  = `^/`
	headerPattern   = `^[A-Za-z0-9_-]+$`
	tokenPattern    = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
)

// docs maps "<definition>.<key>" to the key's documentation.
var docs = map[string]fieldDoc{
	// Top level.
	"gateway.version": {
		Desc:    "Version of the file format. This gatewayd reads version 1 only.",
		Example: 1, Enum: []string{"1"},
	},
	"gateway.listen": {
		Desc:    "host:port of the client-facing HTTP listener; an empty host listens on every interface. A change needs a restart.",
		Example: "0.0.0.0:8080", Pattern: hostPortPattern,
	},
	"gateway.watch": {
		Desc:    "Reload when the configuration file, or a file it names that a reload re-reads (upstream TLS certificates and keys, `api-key` `keys_file`, `jwt` `public_key_file`/`jwks_file`), changes on disk: the same reload as `SIGHUP`, debounced (300 ms). The directories are watched, so editors' atomic saves and Kubernetes ConfigMap updates (a `..data` symlink swap) are seen. A broken file is a failed reload: the previous configuration keeps serving. Turning it on or off applies on reload.",
		Example: true,
	},
	"gateway.admin": {
		Desc:    "The admin listener: `/metrics`, `/healthz`, `/readyz` and `POST /-/reload`.",
		Example: map[string]any{"listen": "127.0.0.1:9901"},
	},
	"gateway.server": {
		Desc:    "Timeouts and limits of the client-facing listener.",
		Example: map[string]any{"read_timeout": "10s", "shutdown_delay": "5s"},
	},
	"gateway.log": {
		Desc:    "Process log and access log (JSON lines on stderr).",
		Example: map[string]any{"level": "info", "format": "json", "access_log": true},
	},
	"gateway.runtime": {
		Desc:    "The Go runtime's garbage collector: `gc_percent` (GOGC) and a soft `memory_limit` (GOMEMLIMIT). Applied on reload.",
		Default: "the environment's GOGC (else 25) and GOMEMLIMIT (else none)",
		Example: map[string]any{"gc_percent": 25},
	},
	"gateway.tracing": {
		Desc:    "OpenTelemetry tracing: a server span per request and a client span per upstream attempt, exported with OTLP. Absent, no span is recorded, and the client's `traceparent`/`tracestate` still reach the upstream unchanged. Applied on reload. See [observability.md](observability.md#tracing).",
		Default: "off",
		Example: map[string]any{"otlp_endpoint": "http://127.0.0.1:4318", "sample_ratio": 0.1},
	},
	"gateway.redis": {
		Desc:    "The shared store for rate-limit buckets, revocations and (with `auth:`) users and sessions. Without it an in-process store is used: one instance only. A change needs a restart.",
		Example: map[string]any{"addrs": []any{"127.0.0.1:6379"}},
	},
	"gateway.upstreams": {
		Desc:    "Named pools of targets that routes send requests to. Names use letters, digits, `_`, `.` and `-`; `builtin:` is reserved.",
		Example: map[string]any{"users": map[string]any{"targets": []any{"http://127.0.0.1:9002"}}},
	},
	"gateway.tls": {
		Desc:    "Serve HTTPS on `listen`: certificates picked by SNI, TLS 1.2 or later, optional client certificates. Absent, `listen` serves plain HTTP. The files are read again on every reload; adding or removing the section needs a restart. See [tls.md](tls.md).",
		Default: "off (plain HTTP)",
		Example: map[string]any{"certificates": []any{map[string]any{"cert_file": "certs/api.pem", "key_file": "certs/api-key.pem"}}},
	},
	"gateway.redirect_http": {
		Desc:    "host:port of an optional plain-HTTP listener that answers every request with `308` to `https://<host><uri>` (the Host header's host, plus the TLS listener's port unless it is 443); a missing or malformed Host is a 400. Needs `tls`. A change needs a restart.",
		Default: "off",
		Example: ":8080", Pattern: hostPortPattern,
	},
	"gateway.auth": {
		Desc:    "The in-process auth service, reached by routes whose upstream is `builtin:auth`. A change needs a restart.",
		Example: map[string]any{"secret": "${JWT_SECRET}"},
	},
	"gateway.plugins": {
		Desc:    "Named, reusable plugin instances: each is a mapping with `type` (the plugin kind) and that kind's settings. Routes list them by name.",
		Example: map[string]any{"auth-jwt": map[string]any{"type": "jwt", "secret": "${JWT_SECRET}"}},
	},
	"gateway.routes": {
		Desc:     "The routes, matched by exact path first, then by the longest path prefix. At least one is required.",
		Required: true,
		Example:  []any{map[string]any{"name": "users", "match": map[string]any{"path_prefix": "/v1/users/"}, "upstream": "users"}},
	},

	// admin:
	"admin.readiness_requires_store": {
		Desc:    "Make `/readyz` answer 503 while the store does not answer its ping, whatever the plugins. Without it the store counts only while a route of the live configuration has a plugin that fails closed on store errors (`on_store_error: deny`, blacklist's default): an instance whose plugins all fail open serves normally with Redis down. Set it when the in-process auth service (users in Redis) must take the instance out of service too. Applies on reload.",
		Example: true,
	},
	"admin.pprof": {
		Desc:    "Serve Go's runtime profiles on the admin listener under `/debug/pprof/`: the index, `cmdline`, `profile` (CPU, `?seconds=N`), `symbol`, `trace` and the named profiles `heap`, `goroutine`, `allocs`, `block`, `mutex` and `threadcreate`, as `net/http/pprof` serves them (`go tool pprof http://127.0.0.1:9901/debug/pprof/heap`). Never on the client listener, where `/debug/pprof/` is an ordinary path. The block and mutex profiles stay empty: the gateway does not turn on their sampling. Profiles reveal internals (the command line, function names, allocation sites) and cost CPU while they run: keep the admin listener private. Applies on reload (see operations.md, Profiling).",
		Example: true,
	},
	"admin.listen": {
		Desc:    "host:port of the admin listener. It has no authentication: keep it on loopback or a private network. In Kubernetes, listen on the pod IP (`:9901`) so the kubelet can probe it. A change needs a restart.",
		Example: ":9901", Pattern: hostPortPattern,
	},

	// server:
	"server.read_timeout": {
		Desc:    "Time allowed to read a request's body, counted from the end of its headers. A streamed body (see `stream_request_body_threshold`) is read while it is sent upstream, so the upstream or route `timeout` bounds it as well.",
		Example: "5s",
	},
	"server.header_timeout": {
		Desc:    "Time allowed to deliver a request's headers: from the moment a new connection opens, and from the first byte of each next request on a keep-alive connection. Connections that send nothing, or headers too slowly, are answered 408 and closed, so they cannot hold `max_connections` for long. With `tls`, the handshake must also finish within it (and the first request's headers then get it again); a client that does not finish its handshake is closed.",
		Example: "3s",
	},
	"server.write_timeout": {
		Desc:    "Time allowed to write a response, counted from the end of the handler: the upstream's time is bounded by the upstream or route `timeout`, not by this.",
		Example: "1m",
	},
	"server.idle_timeout": {
		Desc:    "How long an idle keep-alive connection is kept open waiting for the next request.",
		Example: "2m",
	},
	"server.max_request_header_bytes": {
		Desc:    "Read buffer of each connection, which bounds the request line and headers (at least 1KiB). Larger requests get 431.",
		Example: "16KiB",
	},
	"server.max_request_body_bytes": {
		Desc:    "Largest request body accepted (at least 1 byte). A larger `Content-Length` gets 413 before the body is read; a chunked body that grows past it is cut off, the upstream exchange aborted and the client answered 413.",
		Example: "50MiB",
	},
	"server.stream_request_body_threshold": {
		Desc:    "Largest request body read whole before the request is handled. Larger bodies (and chunked bodies that grow past it) stream to the upstream as they arrive, so memory does not grow with body size or with the number of clients sending bodies; they are never retried. `builtin:auth` reads bodies up to 64KiB whatever this says. `0` streams every body.",
		Example: "256KiB",
	},
	"server.shutdown_timeout": {
		Desc:    "On SIGTERM/SIGINT, the longest the whole shutdown may take, `shutdown_delay` included; requests still running then are cut off and the process exits 1. Read from the live configuration, so a reload changes it.",
		Example: "25s",
	},
	"server.shutdown_delay": {
		Desc:    "On SIGTERM/SIGINT, how long `/readyz` answers 503 while the listener still serves, so load balancers stop sending traffic before it closes. Counted inside `shutdown_timeout`: keep it well below (one as long as `shutdown_timeout` is refused). Read from the live configuration, so a reload changes it.",
		Example: "5s",
	},
	"server.trusted_proxies": {
		Desc:    "IP addresses or CIDRs of proxies allowed to set `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`. From anyone else these headers are replaced. Applied on reload.",
		Default: "none",
		Example: []any{"10.0.0.0/8", "192.168.1.1"},
	},
	"server.drop_underscore_headers": {
		Desc:    "Remove every client request header whose name contains `_` before routing, as nginx does by default (`underscores_in_headers off`): CGI, WSGI and Rack applications read `X_Api_Version` and `X-Api-Version` as the same variable. Identity headers (`X-User-*`, every `forward_claims` name) are stripped by folded name whether or not this is set. Applied on reload.",
		Default: "false",
		Example: true,
	},
	"server.max_connections": {
		Desc:    "Cap on concurrent client connections; `0` keeps fasthttp's default (262144). Connections over the cap are answered with the JSON 503 (`unavailable`) and closed.",
		Default: "0 (262144)",
		Example: 10000, Min: ptr(0),
	},
	"server.max_connections_per_ip": {
		Desc:    "Cap on concurrent client connections from one peer address (the TCP peer, never a header); `0` for no cap. Connections over it are answered with the JSON 503 (`unavailable`) and closed. Peers in `trusted_proxies` (load balancers that carry many clients) are exempt and only count against `max_connections`.",
		Example: 64, Min: ptr(0),
	},

	// tls:
	"tls.certificates": {
		Desc:     "Server certificates, PEM files (the chain leaf first, and its private key). The client's server name (SNI) picks the certificate whose DNS names match it, exactly or by a `*.` wildcard covering one label; the first is served for no or an unknown name. An unreadable file, bad PEM or a key that does not match is an error (on reload: the old certificates keep serving); an expired or not yet valid certificate is a warning.",
		Required: true, Default: "none (required)",
		Example: []any{map[string]any{"cert_file": "certs/api.pem", "key_file": "certs/api-key.pem"}},
	},
	"tls.min_version": {
		Desc:    "Lowest TLS version accepted: `\"1.2\"` or `\"1.3\"`; nothing older is ever served. Cipher suites are Go's defaults (forward secrecy only; see [tls.md](tls.md#certificates)). Applied on reload.",
		Example: "1.3", Enum: []string{"1.2", "1.3"},
	},
	"tls.client_ca_file": {
		Desc:    "PEM certificates of the CAs that sign client certificates. Needed by, and only used with, `client_auth: request` or `require`.",
		Default: "none",
		Example: "certs/clients-ca.pem",
	},
	"tls.client_auth": {
		Desc:    "Client certificates (mTLS): `none`; `request` asks for one and verifies it against `client_ca_file` when sent; `require` refuses the handshake without one that verifies. Applied on reload, to new connections.",
		Example: "require", Enum: []string{"none", "request", "require"},
	},
	"tls.alpn": {
		Desc:    "Application protocols offered in the handshake (ALPN). Only `http/1.1` is served: `h2` is refused, see [tls.md](tls.md#http2-and-grpc) for why and what to put in front for HTTP/2 and gRPC.",
		Example: []any{"http/1.1"}, Enum: []string{"http/1.1"},
	},
	"tls.forward_client_cert": {
		Desc:    "Request header that carries the verified client certificate's subject CN and names upstream, as `CN=alice;DNS=alice.example;URI=spiffe://example/alice;Email=a@example;IP=192.0.2.1` (bytes outside printable ASCII and `;`, `=`, `,`, `%`, `\"` percent-encoded). Client-sent copies are always removed, by folded name like the other identity headers. Needs `client_auth: request` or `require`; without a verified certificate the header is not set.",
		Default: "off",
		Example: "X-Client-Cert-Subject", Pattern: `^[!#$%&'*+.^_|~0-9A-Za-z-]+$`,
	},

	// tls.certificates[]:
	"tlsCertificate.cert_file": {
		Desc:     "PEM certificate chain, leaf first.",
		Required: true, Default: "none (required)",
		Example: "certs/api.pem",
	},
	"tlsCertificate.key_file": {
		Desc:     "PEM private key of `cert_file` (PKCS #1, PKCS #8 or SEC 1).",
		Required: true, Default: "none (required)",
		Example: "certs/api-key.pem",
	},

	// runtime:
	"runtime.gc_percent": {
		Desc:    "How far the heap may grow over the live data before the next garbage collection, in percent (the `GOGC` environment variable, which it overrides; unset, `GOGC` applies, else 25, a quarter of the Go runtime's default: the request path does not allocate, so collections stay rare). Lower holds less memory at the cost of more CPU spent collecting. Applies on reload.",
		Default: "unset (`GOGC`, or 25)",
		Example: 25, Min: ptr(10), Max: ptr(1000),
	},
	"runtime.memory_limit": {
		Desc:    "A soft limit on the memory the Go runtime holds (the `GOMEMLIMIT` environment variable, which it overrides; unset, `GOMEMLIMIT` or none applies). Near it the collector runs more often, on top of `gc_percent`; the process is never stopped, and when the live data needs more the limit is exceeded. Leave room above the live heap: at a limit close to it the collector takes much of the CPU and store calls can miss their deadlines (see operations.md, Memory). Applies on reload.",
		Default: "unset (`GOMEMLIMIT`, or none)",
		Example: "64MiB",
	},

	// log:
	"log.level": {
		Desc:    "Lowest level logged. Read at startup: a change needs a restart.",
		Example: "warn", Enum: []string{"debug", "info", "warn", "error"},
	},
	"log.format": {
		Desc:    "`json` lines, or `console` for people. Read at startup: a change needs a restart.",
		Example: "console", Enum: []string{"json", "console"},
	},
	"log.access_log": {
		Desc:    "One `access` line per request: request_id, method, path, host, protocol, route, status, duration, bytes_in, bytes_out, upstream, upstream_addr, upstream_status, upstream_duration, trace_id, user_id, client_ip, user_agent (see [observability.md](observability.md#access-log)). Applied on reload.",
		Example: false,
	},

	"log.access_log_query": {
		Desc:    "Log the query string with the path (`path` becomes `/p?a=b`). Off by default: query strings often carry secrets (API keys, tokens). Applied on reload.",
		Example: true,
	},

	// tracing:
	"tracing.otlp_endpoint": {
		Desc:     "The OTLP collector. `http://` or `https://` is OTLP/HTTP with protobuf (the path defaults to `/v1/traces`); `grpc://` (plain) or `grpcs://` (TLS) is OTLP/gRPC. `user:password@` in the URL is sent as Basic authentication; logs show the URL redacted.",
		Required: true, Default: "none (required)",
		Example: "http://otel-collector:4318", Pattern: `^([Hh][Tt][Tt][Pp][Ss]?|[Gg][Rr][Pp][Cc][Ss]?)://[^\s?#]+$`,
	},
	"tracing.sample_ratio": {
		Desc:    "Share of new traces recorded, from 0 to 1. Parent-based: a request whose `traceparent` is sampled is always recorded, one whose `traceparent` is not sampled never is; the ratio applies to requests without a valid `traceparent`.",
		Example: 0.1, Min: ptr(0), Max: ptr(1),
	},
	"tracing.service_name": {
		Desc:    "The `service.name` resource attribute of the spans.",
		Example: "edge-gateway",
	},
	"tracing.headers": {
		Desc:    "Headers sent with every export request, such as a collector's API key (put it in the environment: `${OTLP_API_KEY}`).",
		Default: "none",
		Example: map[string]any{"x-api-key": "${OTLP_API_KEY}"},
	},

	// redis:
	"redis.addrs": {
		Desc:    "Addresses (host:port). One address is a single server, or any node of a Redis Cluster (detected); several are seed nodes of a Redis Cluster. Empty with `sentinel`.",
		Default: "none",
		Example: []any{"redis-0.redis:6379", "redis-1.redis:6379", "redis-2.redis:6379"}, Pattern: hostPortPattern,
	},
	"redis.cluster": {
		Desc:    "Insist on Redis Cluster: a server that is not a cluster node is then an error at startup instead of a fallback to the single-server client.",
		Example: true,
	},
	"redis.sentinel": {
		Desc:    "Find the master of a replicated set through Redis Sentinel.",
		Default: "none",
		Example: map[string]any{"master_set": "gatewayd", "addrs": []any{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"}},
	},
	"redis.username": {
		Desc:    "ACL user name (needs `password`); empty authenticates with `password` alone (requirepass).",
		Default: "none",
		Example: "gatewayd",
	},
	"redis.password": {
		Desc:    "Password. Put it in the environment: `${REDIS_PASSWORD}`.",
		Default: "none",
		Example: "${REDIS_PASSWORD}",
	},
	"redis.db": {
		Desc:    "Database number selected on connect. Redis Cluster has database 0 only.",
		Example: 2, Min: ptr(0),
	},
	"redis.client_name": {
		Desc:    "Name set on every connection (`CLIENT SETNAME`), to find the gateway's connections in `CLIENT LIST`. No spaces.",
		Default: "none",
		Example: "gatewayd",
	},
	"redis.client_side_cache": {
		Desc:    "RESP3 client-side caching (Redis 6 or later): revocation checks are answered from the gateway's memory and invalidated by Redis when a key changes.",
		Example: false,
	},
	"redis.cache_size": {
		Desc:    "Cap on the client-side cache of each connection (at least 1KiB), and on the revocation answers kept from it; `0` caps each connection's cache at 256KiB (the answers, not the client library's entries, serve repeated checks) and the answers at 128MiB.",
		Default: "0 (256KiB; answers 128MiB)",
		Example: "16MiB",
	},
	"redis.tls": {
		Desc:    "TLS to Redis and to the sentinels.",
		Default: "off",
		Example: map[string]any{"ca_file": "/etc/gatewayd/redis-ca.pem"},
	},
	"redis.dial_timeout": {
		Desc:    "Time allowed to establish a connection, TLS and AUTH included.",
		Example: "1s",
	},
	"redis.command_timeout": {
		Desc:    "How long a connection's liveness PING may go unanswered before the connection is declared dead, closed and redialled (at least 10ms). A connection that got no reply for a quarter of this (at most 1s) sends that PING, so a silent node (paused, black-holed, busy in a script) is detected within 1.5 × `command_timeout`. A request still waits at most its plugin's `store_timeout`.",
		Example: "1s",
	},
	"redis.connections_per_node": {
		Desc:    "Pipelined connections to each node, a power of two up to 256. `0`: one per node with the client-side cache, else the client library's default. More than one needs `client_side_cache: false`.",
		Default: "0 (automatic)",
		Example: 4, Min: ptr(0), Max: ptr(256),
	},
	"redis.read_buffer_size": {
		Desc:    "Read buffer of each connection (at least 1KiB); `0`: 64KiB, which holds a pipelined batch of hundreds of commands. Larger commands and replies go through whole, in several reads or writes.",
		Default: "0 (64KiB)",
		Example: "512KiB",
	},
	"redis.write_buffer_size": {
		Desc:    "Write buffer of each connection (at least 1KiB); `0`: 64KiB, which holds a pipelined batch of hundreds of commands. Larger commands and replies go through whole, in several reads or writes.",
		Default: "0 (64KiB)",
		Example: "512KiB",
	},
	"redis.max_flush_delay": {
		Desc:    "How long the writer may wait to batch more commands into one write: less CPU on the gateway and on Redis, a little more latency.",
		Example: "100us",
	},
	"redis.max_in_flight": {
		Desc:    "Cap on the store calls in flight, counted until Redis answers them, whether or not the request still waits. Admission is non-blocking: a call over the cap fails at once and is answered per its plugin's `on_store_error`. At most 1023, below the 1024 commands the client library queues per connection, so no call ever waits for room in that queue.",
		Example: 256, Min: ptr(0), Max: ptr(1023),
	},
	"redis.max_concurrent_calls": {
		Desc:    "Cap on the store calls running at once, each holding a goroutine for about one Redis round trip; calls beyond it wait for one within their `store_timeout` (and still count in `max_in_flight`). Store calls per second top out near this divided by the round-trip time (64 at 1 ms: 64 000 a second): raise it for a distant Redis. At most `max_in_flight`.",
		Default: "0 (64)",
		Example: 256, Min: ptr(0), Max: ptr(1023),
	},
	"redis.breaker_failures": {
		Desc:    "Store calls failing in a row (timeouts, calls over `max_in_flight`, refused or lost connections), with none succeeding for 100ms, that open the circuit breaker: store calls then fail at once, answered per `on_store_error`, until a probe succeeds.",
		Example: 10, Min: ptr(0),
	},
	"redis.breaker_cooldown": {
		Desc:    "How long the breaker stays open before it lets one probe call through (at least 10ms); the probe's success closes it, its failure opens it for another cooldown.",
		Example: "2s",
	},
	"redis.topology_refresh": {
		Desc:    "How often the cluster slot map or the sentinels' master is read again in the background (at least 100ms); errors and MOVED replies trigger a refresh at once.",
		Example: "10s",
	},

	// redis.sentinel:
	"redisSentinel.master_set": {
		Desc:     "The name the sentinels monitor (`sentinel monitor <name> ...`).",
		Required: true, Default: "none (required)",
		Example: "gatewayd",
	},
	"redisSentinel.addrs": {
		Desc:     "Sentinel addresses (host:port).",
		Required: true, Default: "none (required)",
		Example: []any{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"}, Pattern: hostPortPattern,
	},
	"redisSentinel.username": {
		Desc:    "ACL user name on the sentinels (needs `password`).",
		Default: "none",
		Example: "sentinel-user",
	},
	"redisSentinel.password": {
		Desc:    "Password of the sentinels.",
		Default: "none",
		Example: "${REDIS_SENTINEL_PASSWORD}",
	},

	// redis.tls:
	"redisTLS.ca_file": {
		Desc:    "PEM CA certificates that verify the server.",
		Default: "the system roots",
		Example: "/etc/gatewayd/redis-ca.pem",
	},
	"redisTLS.cert_file": {
		Desc:    "PEM client certificate, with `key_file`.",
		Default: "none",
		Example: "/etc/gatewayd/redis-client.pem",
	},
	"redisTLS.key_file": {
		Desc:    "PEM private key of `cert_file`.",
		Default: "none",
		Example: "/etc/gatewayd/redis-client-key.pem",
	},
	"redisTLS.server_name": {
		Desc:    "Name verified in the server's certificate.",
		Default: "the host of the address dialled",
		Example: "redis.internal",
	},
	"redisTLS.insecure_skip_verify": {
		Desc:    "Accept any server certificate: for tests only, and not with `ca_file`.",
		Example: true,
	},

	// upstreams.<name>:
	"upstream.targets": {
		Desc:     "The targets: each a base URL (`http://` or `https://`, host and optional port, no path, query or credentials), weight 1, or a mapping `{url, weight}` (see below). At most 64, each listed once.",
		Required: true, Default: "none (required)",
		Example: []any{map[string]any{"url": "http://10.0.1.10:8080", "weight": 90}, map[string]any{"url": "http://10.0.1.11:8080", "weight": 10}}, Pattern: targetPattern,
	},
	"upstream.balance": {
		Desc:    "How requests are spread over the targets, by weight: `round_robin` (in proportion to the weights, interleaved), or `least_conn` (fewest requests in flight per unit of weight; ties, such as idle targets, broken by weight).",
		Example: "least_conn", Enum: []string{"round_robin", "least_conn"},
	},
	"upstream.retry_on": {
		Desc:    "What `retries` applies to: `connect` (no connection could be had: the connect failed, TLS verification failed or every connection slot was busy; nothing was sent) and response status codes from 500 to 599 (the response is dropped before any of it reaches the client). Only idempotent methods are retried (GET, HEAD, OPTIONS, PUT, DELETE, TRACE; RFC 9110 §9.2.2), never a request whose body is streamed to the upstream (larger than `server.stream_request_body_threshold`), and never once the response was handed to the client. A request that was sent and got no answer (reset, timeout) is not retried. Each retry counts against `retries` and the `retry_budget`, and goes to a target the request has not tried when there is one.",
		Default: "`[connect]`",
		Example: []any{"connect", 502, 503, 504}, Pattern: `^(connect|5[0-9][0-9])$`,
	},
	"upstream.retry_budget": {
		Desc:    "Caps the retries of this upstream relative to its requests (see below).",
		Default: "`{ratio: 0.2, min_per_second: 10, window: 10s}`",
		Example: map[string]any{"ratio": 0.1, "min_per_second": 5},
	},

	// upstreams.<name>.targets[]:
	"upstreamTarget.url": {
		Desc:     "Base URL of the target, as in the string form.",
		Required: true, Default: "none (required)",
		Example: "http://10.0.1.10:8080", Pattern: targetPattern,
	},
	"upstreamTarget.weight": {
		Desc:    "The target's share of the requests, relative to the other targets' weights. `0` drains the target: it gets no new requests (its health checks go on); at least one target must have a weight above 0.",
		Example: 90, Min: ptr(0), Max: ptr(10000),
	},

	// upstreams.<name>.retry_budget:
	"retryBudget.ratio": {
		Desc:    "Retries allowed as a share of the requests that could be retried, from 0 to 1.",
		Example: 0.1, Min: ptr(0), Max: ptr(1),
	},
	"retryBudget.min_per_second": {
		Desc:    "Retries allowed per second of the window whatever the ratio, so an upstream with little traffic can still retry. `0`: the ratio alone decides.",
		Example: 5, Min: ptr(0), Max: ptr(1000000),
	},
	"retryBudget.window": {
		Desc:    "The sliding window requests and retries are counted over: whole seconds from 1s to 1m.",
		Example: "30s",
	},
	"upstream.connect_timeout": {
		Desc:    "Time allowed to open a connection to a target (TCP connect plus TLS handshake).",
		Example: "500ms",
	},
	"upstream.timeout": {
		Desc:    "Time allowed for the whole upstream exchange, from picking a target to the end of the response body. Exceeded: 504.",
		Example: "30s",
	},
	"upstream.max_conns_per_target": {
		Desc:    "Connections the gateway may open to each target. With every slot busy the request gets 503.",
		Example: 256, Min: ptr(0),
	},
	"upstream.retries": {
		Desc:    "Extra attempts of a request, for the conditions of `retry_on`, on a target the request has not tried when there is one (else the same). All attempts together stay within `timeout` (or the route's). 0 to 10.",
		Example: 2, Min: ptr(0), Max: ptr(10),
	},
	"upstream.health_check": {
		Desc:    "Active health checks: every `interval` each target gets `GET path` and takes traffic while it answers 2xx or 3xx. When every target fails, requests still go to them. Absent: no active checks.",
		Default: "off",
		Example: map[string]any{"path": "/healthz", "interval": "5s"},
	},
	"upstream.max_response_body_bytes": {
		Desc:    "Largest upstream response body; a larger one is a 502. `0` is unlimited.",
		Default: "0 (unlimited)",
		Example: "512MiB",
	},
	"upstream.eject_after": {
		Desc:    "Consecutive connect failures that take a target out of rotation for `eject_for` (passive health checking).",
		Example: 5, Min: ptr(0),
	},
	"upstream.eject_for": {
		Desc:    "How long an ejected target is skipped. A passing active health check ends the ejection early.",
		Example: "30s",
	},

	"upstream.tls": {
		Desc:    "TLS settings of the `https://` targets: CA, server name, client certificate (see below). Needs https targets.",
		Default: "system roots, target host",
		Example: map[string]any{"ca_file": "/etc/gatewayd/internal-ca.pem", "server_name": "billing.internal"},
	},

	// upstreams.<name>.tls:
	"upstreamTLS.ca_file": {
		Desc:    "PEM bundle of the CA certificates that verify the targets' certificates (only these are trusted, not the system roots).",
		Default: "the system roots",
		Example: "/etc/gatewayd/internal-ca.pem",
	},
	"upstreamTLS.cert_file": {
		Desc:    "PEM client certificate (chain, leaf first) presented to targets that ask for one (mTLS), with `key_file`.",
		Default: "none",
		Example: "/etc/gatewayd/gw-client.pem",
	},
	"upstreamTLS.key_file": {
		Desc:    "PEM private key of `cert_file`; it must match the certificate.",
		Default: "none",
		Example: "/etc/gatewayd/gw-client-key.pem",
	},
	"upstreamTLS.server_name": {
		Desc:    "Name sent as SNI and verified in every target's certificate (a host name or IP address, no port).",
		Default: "each target's host",
		Example: "billing.internal",
	},
	"upstreamTLS.min_version": {
		Desc:    "Lowest TLS version offered: `\"1.2\"` or `\"1.3\"`.",
		Default: "`\"1.2\"`",
		Example: "1.3", Enum: []string{"1.2", "1.3"},
	},
	"upstreamTLS.insecure_skip_verify": {
		Desc:    "Accept any certificate the targets present. Allowed for tests and migrations only: the gateway warns at start, on reload and in `-check`. Not with `ca_file`.",
		Example: true,
	},

	// upstreams.<name>.health_check:
	"healthCheck.path": {
		Desc:    "Path requested on each target; must start with `/`.",
		Example: "/ready", Pattern: absPathPattern,
	},
	"healthCheck.interval": {
		Desc:    "Time between two checks of a target.",
		Example: "10s",
	},
	"healthCheck.timeout": {
		Desc:    "Time allowed for one check; must not exceed `interval` (set it when `interval` is below 2s).",
		Example: "1s",
	},

	// auth:
	"auth.secret": {
		Desc:    "HS256 signing secret, at least 32 bytes of random data (placeholders such as REPLACE_ME, repeated characters or patterns and anything under about 128 bits of estimated entropy are refused; generate one with `head -c 48 /dev/urandom | base64`); the jwt plugin that checks the tokens needs the same secret. Set exactly one of `secret` and `private_key_file`.",
		Default: "none",
		Example: "${JWT_SECRET}",
	},
	"auth.private_key_file": {
		Desc:    "PEM private key (PKCS #8 or PKCS #1): RSA (2048 bits or more) signs RS256, Ed25519 signs EdDSA; the public key is served at `/.well-known/jwks.json`.",
		Default: "none",
		Example: "/etc/gatewayd/auth-ed25519.pem",
	},
	"auth.key_id": {
		Desc:    "The `kid` header of issued tokens.",
		Default: "the key's RFC 7638 thumbprint (key pairs); none (HS256)",
		Example: "auth-2026-01",
	},
	"auth.issuer": {
		Desc:    "The `iss` claim of issued tokens.",
		Example: "https://auth.example.com",
	},
	"auth.audience": {
		Desc:    "The `aud` claim of issued tokens.",
		Example: "example-api",
	},
	"auth.access_ttl": {
		Desc:    "Lifetime of access tokens (at least 1s).",
		Example: "5m",
	},
	"auth.refresh_ttl": {
		Desc:    "Lifetime of refresh tokens, renewed by each rotation; at least `access_ttl`.",
		Example: "720h",
	},
	"auth.refresh_reuse_grace": {
		Desc:    "A retry with the previous refresh token within this time gets the same new pair; later reuse signs out every session of the account. At most 1m; `0` disables retries.",
		Example: "10s",
	},
	"auth.bcrypt_cost": {
		Desc:    "bcrypt cost of password hashes (4 to 31). Stored hashes with a lower cost are upgraded at login.",
		Example: 13, Min: ptr(4), Max: ptr(31),
	},
	"auth.lockout": {
		Desc:    "Account lockout after repeated failed logins.",
		Example: map[string]any{"max_failures": 5, "window": "15m"},
	},
	"auth.users_file": {
		Desc:    "Embedded (bbolt) database of users and sessions, used when there is no `redis:` section.",
		Example: "/var/lib/gatewayd/users.db",
	},

	// auth.lockout:
	"lockout.max_failures": {
		Desc:    "Failed logins within `window` that lock the account (at least 1).",
		Example: 10, Min: ptr(1),
	},
	"lockout.window": {
		Desc:    "Window in which failures are counted; the lock then lasts `window` from the failure that set it.",
		Example: "30m",
	},

	// routes[]:
	"route.name": {
		Desc:     "Unique name, used in metrics (`route` label), logs and as the default rate-limit bucket.",
		Required: true, Default: "none (required)",
		Example: "users", Pattern: namePattern,
	},
	"route.match": {
		Desc:     "Which requests the route serves.",
		Required: true, Default: "none (required)",
		Example: map[string]any{"path_prefix": "/v1/users/", "methods": []any{"GET", "POST"}},
	},
	"route.upstream": {
		Desc:     "Name of an upstream, or `builtin:auth` for the in-process auth service (needs `auth:`).",
		Required: true, Default: "none (required)",
		Example: "users",
	},
	"route.plugins": {
		Desc:    "Plugin chain, run in the order listed. Each entry is a name (a built-in kind with its defaults, or an instance under `plugins:`) or a one-key map `{kind: {settings}}`.",
		Default: "none",
		Example: []any{"request-id", "auth-jwt", map[string]any{"ratelimit": map[string]any{"key": "user", "limit": 100, "period": "1m"}}},
	},
	"route.strip_prefix": {
		Desc:    "Remove `match.path_prefix` from the path sent upstream (`/api/x` with prefix `/api/` is sent as `/x`). Needs `match.path_prefix`.",
		Example: true,
	},
	"route.rewrite": {
		Desc:    "Replace the path sent upstream with a template filled with the parameters of `match.path` (see [routes[].rewrite](#def-rewrite)). Not with `strip_prefix`.",
		Default: "none (the normalised request path)",
		Example: map[string]any{"path": "/internal/items/{id}"},
	},
	"route.preserve_host": {
		Desc:    "Send the client's `Host` upstream instead of the target's host (which is the default; the client's host then travels in `X-Forwarded-Host`).",
		Example: true,
	},
	"route.timeout": {
		Desc:    "Upstream timeout of this route, replacing the upstream's `timeout`; `0` keeps the upstream's. Not used for `builtin:auth`.",
		Default: "0 (the upstream's timeout)",
		Example: "90s",
	},

	"route.websocket": {
		Desc:    "Let WebSocket handshakes through: an `Upgrade: websocket` GET runs the route's plugins like any request, is forwarded with `Connection: Upgrade`/`Upgrade: websocket`, and after the upstream's `101` bytes are tunnelled both ways until either side closes. Without it a WebSocket handshake is answered `400`. Needs GET among `match.methods` (when listed); not for `builtin:auth`. See the WebSocket section of docs/operations.md.",
		Example: true,
	},
	"route.websocket_idle_timeout": {
		Desc:    "Close a tunnel that carried no byte in either direction for this long (WebSocket pings count). Needs `websocket: true`; at least `1s`.",
		Default: "5m (with `websocket: true`)",
		Example: "1h",
	},

	// routes[].match:
	"match.path": {
		Desc:    "Path (after normalisation), matched exactly except for parameters, each a whole segment: `{name}` matches one non-empty segment, and `{name...}`, only as the last segment, the rest of the path after its slash, possibly empty (`/files/{path...}` matches `/files/` and `/files/a/b`, not `/files`). Names are identifiers (letters, digits, `_`, not starting with a digit), unique in the path, at most 8. A path without parameters beats any other pattern. Give `path` or `path_prefix`, not both.",
		Default: "none",
		Example: "/v1/items/{id}", Pattern: absPathPattern,
	},
	"match.path_prefix": {
		Desc:    "Path prefix matched on whole segments: `/v1/admin` matches `/v1/admin` and `/v1/admin/x`, never `/v1/adminx`. The longest prefix wins.",
		Default: "none",
		Example: "/v1/users/", Pattern: absPathPattern,
	},
	"match.host": {
		Desc:    "Host the request must name (the `Host` header without its port, any case); `*.example.com` matches one or more labels in front of `example.com`, not `example.com` itself. Routes with a host are tried before routes without.",
		Default: "any host",
		Example: "api.example.com",
	},
	"match.headers": {
		Desc:    "Request headers that must all be present with exactly these values: names compared case-insensitively, values byte for byte (the first header of a name counts). A request that does not carry them is matched as if the route did not exist, so it reaches a less specific route, e.g. the stable twin of a canary. At one path pattern, routes with more conditions are tried first. Headers are matched after header hygiene, as the upstream would see them: not for `Host` (use `host`), hop-by-hop headers, `Content-Length`, identity headers (`X-User-*`, `forward_claims` names) or, with `server.drop_underscore_headers`, names with `_`, which are all removed or handled before routing. Values are not empty. Header conditions select a route; they do not authenticate (any client can send them).",
		Default: "none",
		Example: map[string]any{"X-Canary": "1"},
	},
	"match.methods": {
		Desc:    "Methods served, upper case, compared case-sensitively (`get` is not `GET`); a route that accepts GET also accepts HEAD, and a route with a `cors` plugin also accepts OPTIONS. The most specific matching path decides: when none of its routes accepts the method the answer is 405 with `Allow`, never a less specific route (a catch-all `/` does not serve a `PATCH` that `/v1/users/` refuses).",
		Default: "every method",
		Example: []any{"GET", "POST"}, Enum: httpMethods,
	},

	// routes[].rewrite:
	"rewrite.path": {
		Desc:     "Template of the upstream path: literal segments and parameters of `match.path`, each a whole segment, `{name}` for a one-segment parameter and `{name...}` (last) for the rest. The parameter values are the normalised, decoded segments the route matched, escaped again on the way out exactly as an unrewritten path is; the query string is kept. Written decoded and normalised, like `match.path`. Needs `match.path` (a `path_prefix` route has no parameters: write it as `/prefix/{rest...}`).",
		Required: true, Default: "none (required)",
		Example: "/internal/items/{id}", Pattern: absPathPattern,
	},

	// request-id
	"plugin-request-id.header": {
		Desc:    "Header carrying the id, to the upstream and in the response. The client's value is kept when it is 1 to 128 characters of `[A-Za-z0-9._:-]`, otherwise a UUID is generated.",
		Example: "X-Trace-ID", Pattern: headerPattern,
	},

	// jwt
	"plugin-jwt.algorithms": {
		Desc:    "Accepted `alg` values. HMAC (HS*) and public-key algorithms cannot be mixed; `none` is never accepted.",
		Example: []any{"RS256"}, Enum: jwtAlgorithms,
	},
	"plugin-jwt.secret": {
		Desc:    "HMAC secret for HS* tokens, at least as long as the hash (32 bytes for HS256, 48 for HS384, 64 for HS512) and random: placeholders such as REPLACE_ME, repeated characters or patterns and anything under about 128 bits of estimated entropy are refused (generate one with `head -c 48 /dev/urandom | base64`). Exactly one of `secret`, `public_key_file`, `jwks_file` and `jwks_url` is set.",
		Default: "none",
		Example: "${JWT_SECRET}",
	},
	"plugin-jwt.public_key_file": {
		Desc:    "PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY` or a certificate): RSA (2048 bits or more), ECDSA P-256/P-384/P-521 or Ed25519.",
		Default: "none",
		Example: "/etc/gatewayd/issuer.pub.pem",
	},
	"plugin-jwt.jwks_file": {
		Desc:    "JSON Web Key Set file (RSA, EC and OKP keys; `use: enc` keys are skipped).",
		Default: "none",
		Example: "/etc/gatewayd/jwks.json",
	},
	"plugin-jwt.jwks_url": {
		Desc:    jwksURLDesc,
		Default: "none",
		Example: "https://issuer.example.com/.well-known/jwks.json",
	},
	"plugin-jwt.jwks_refresh": {
		Desc:    jwksRefreshDesc,
		Example: "15m",
	},
	"plugin-jwt.jwks_refetch_interval": {
		Desc:    jwksRefetchDesc,
		Example: "30s",
	},
	"plugin-jwt.issuer": {
		Desc:    "The `iss` claim that selects the provider. In the single-provider form it may be left out: then any `iss` is accepted.",
		Default: "not checked",
		Example: "gatewayd-auth",
	},
	"plugin-jwt.audience": {
		Desc:    audienceDesc,
		Default: "not checked",
		Example: "api",
	},
	"plugin-jwt.typ": {
		Desc:    typDesc,
		Example: []any{"access"},
	},
	"plugin-jwt.typ_claim": {
		Desc:    typClaimDesc,
		Example: "token_use",
	},
	"plugin-jwt.roles_claim": {
		Desc:    rolesClaimDesc,
		Example: "realm_access.roles",
	},
	"plugin-jwt.scopes_claim": {
		Desc:    scopesClaimDesc,
		Default: "`scope`, then `scp`",
		Example: "scp",
	},
	"plugin-jwt.providers": {
		Desc:    "Several identity providers, each with its own issuer, key source, algorithms, audience, `typ` and claim names; the token's `iss` selects one (no match: 401 `invalid token issuer`). The provider settings are written either here or at the top level (one provider), never both; issuers must be unique.",
		Default: "none (the top-level settings are the one provider)",
		Example: []any{map[string]any{"issuer": "https://sso.example.com/realms/main", "jwks_url": "https://sso.example.com/realms/main/protocol/openid-connect/certs", "algorithms": []any{"RS256"}, "audience": "account", "typ": []any{"Bearer"}, "roles_claim": "realm_access.roles"}},
	},
	"jwtProvider.issuer": {
		Desc:     "The `iss` claim that selects this provider; unique among the providers.",
		Required: true, Default: "none (required)",
		Example: "https://tenant.eu.auth0.com/",
	},
	"jwtProvider.algorithms": {
		Desc:    "Accepted `alg` values for this provider's tokens. HMAC (HS*) and public-key algorithms cannot be mixed in one provider; `none` is never accepted.",
		Example: []any{"RS256"}, Enum: jwtAlgorithms,
	},
	"jwtProvider.secret": {
		Desc:    "HMAC secret for HS* tokens (same rules as the plugin-level `secret`). Exactly one of `secret`, `public_key_file`, `jwks_file` and `jwks_url` is set.",
		Default: "none",
		Example: "${JWT_SECRET}",
	},
	"jwtProvider.public_key_file": {
		Desc:    "PEM public key of the provider (RSA 2048 bits or more, ECDSA P-256/P-384/P-521 or Ed25519).",
		Default: "none",
		Example: "/etc/gatewayd/issuer.pub.pem",
	},
	"jwtProvider.jwks_file": {
		Desc:    "JSON Web Key Set file of the provider.",
		Default: "none",
		Example: "/etc/gatewayd/jwks.json",
	},
	"jwtProvider.jwks_url": {
		Desc:    jwksURLDesc,
		Default: "none",
		Example: "https://tenant.eu.auth0.com/.well-known/jwks.json",
	},
	"jwtProvider.jwks_refresh": {
		Desc:    jwksRefreshDesc,
		Example: "15m",
	},
	"jwtProvider.jwks_refetch_interval": {
		Desc:    jwksRefetchDesc,
		Example: "30s",
	},
	"jwtProvider.audience": {
		Desc:    audienceDesc,
		Default: "not checked",
		Example: []any{"https://api.example.com"},
	},
	"jwtProvider.typ": {
		Desc:    typDesc,
		Example: []any{"Bearer"},
	},
	"jwtProvider.typ_claim": {
		Desc:    typClaimDesc,
		Example: "token_use",
	},
	"jwtProvider.roles_claim": {
		Desc:    rolesClaimDesc,
		Example: "https://example.com/roles",
	},
	"jwtProvider.scopes_claim": {
		Desc:    scopesClaimDesc,
		Default: "`scope`, then `scp`",
		Example: "scp",
	},
	"plugin-jwt.leeway": {
		Desc:    "Clock skew allowed on `exp`, `nbf` and `iat`.",
		Example: "10s",
	},
	"plugin-jwt.cookie": {
		Desc:    "Cookie to read the token from when there is no `Authorization` header.",
		Default: "none",
		Example: "access_token", Pattern: tokenPattern,
	},
	"plugin-jwt.forward_claims": {
		Desc:    "Claims copied to request headers for the upstream (`claim: Header-Name`); a claim is named like `roles_claim` (whole name, else a dotted path) and a list is forwarded comma-separated. Client-sent copies of these headers are removed on every route.",
		Default: "none",
		Example: map[string]any{"sub": "X-User-ID", "role": "X-User-Role"},
	},
	"plugin-jwt.optional": {
		Desc:    "Let requests without a token through as anonymous. A token that fails verification is still refused.",
		Example: true,
	},
	"plugin-jwt.max_token_bytes": {
		Desc:    "Longer tokens are refused before parsing (at least 128 bytes).",
		Example: "4KiB",
	},
	"plugin-jwt.cache_size": {
		Desc:    "Verified tokens kept in memory; `0` turns the cache off.",
		Example: 50000, Min: ptr(0),
	},
	"plugin-jwt.cache_ttl": {
		Desc:    "A cached token is verified again after this long (and never used past its `exp`).",
		Example: "30s",
	},

	// api-key
	"plugin-api-key.header": {
		Desc:    "Header carrying the key (matched case-insensitively). Exclusive with `query`.",
		Example: "X-Gateway-Key", Pattern: headerPattern,
	},
	"plugin-api-key.query": {
		Desc:    "Query parameter carrying the key, instead of a header. Weaker: URLs end up in logs, browser history and Referer headers of whoever handles them; prefer a header. Exclusive with `header`.",
		Default: "none (the header is used)",
		Example: "api_key",
	},
	"plugin-api-key.keys_file": {
		Desc:     "JSON or YAML file `{\"keys\": [{\"id\", \"sha256\", \"sub\", \"roles\", \"scopes\", \"expires\"}]}` listing each key by the hex SHA-256 of the key (never the key). Relative paths are read next to the configuration file. Re-read on every reload (SIGHUP, `/-/reload`), also when only this file changed; `authd apikey` makes a key and its entry.",
		Required: true, Default: "none (required)",
		Example: "/etc/gatewayd/api-keys.json",
	},
	"plugin-api-key.forward_header": {
		Desc:    "Request header carrying the key's `sub` to the upstream. Client-sent copies are removed on every route.",
		Example: "X-Client-ID", Pattern: headerPattern,
	},
	"plugin-api-key.optional": {
		Desc:    "Let requests without a key through as anonymous. A key that is unknown or expired is still refused.",
		Example: true,
	},
	"plugin-api-key.keep_credential": {
		Desc:    "Keep the key header (or query parameter) on the upstream request. By default it is removed, so upstreams never see keys.",
		Example: true,
	},

	// blacklist
	"plugin-blacklist.on_store_error": {
		Desc:    "When the store cannot answer: `deny` (503) or `allow` (fail open).",
		Example: "allow", Enum: []string{"deny", "allow"},
	},
	"plugin-blacklist.cache_ttl": {
		Desc:    "With Redis client-side caching, how long a \"not revoked\" answer may be served from the cache; `0` asks Redis every time.",
		Example: "500ms",
	},
	"plugin-blacklist.store_timeout": {
		Desc:    "Deadline of each store call (Redis only).",
		Example: "20ms",
	},

	// rbac
	"plugin-rbac.roles": {
		Desc:    "Allowed roles (the identity's roles: the token's `roles_claim` or the API key's `roles`), any of them. Empty: any role.",
		Default: "none",
		Example: []any{"admin"},
	},
	"plugin-rbac.scopes": {
		Desc:    "Required scopes (the identity's scopes: the token's `scopes_claim`, by default `scope` then `scp`), all of them.",
		Default: "none",
		Example: []any{"users:read"},
	},
	"plugin-rbac.rules": {
		Desc:    "Per-method requirements; the first rule listing the request's method replaces `roles` and `scopes`, and a rule listing GET also covers HEAD. A method no rule covers uses `roles`/`scopes`; with neither, it is refused (403), and `-check` warns about the methods left out.",
		Default: "none",
		Example: []any{map[string]any{"methods": []any{"GET", "HEAD"}, "roles": []any{"admin", "user"}}},
	},
	"rbacRule.methods": {
		Desc:     "Methods the rule covers (written in any case, compared upper-case with the request's case-sensitive method). GET also covers HEAD unless a rule lists HEAD. A method may appear in one rule only.",
		Required: true, Default: "none (required)",
		Example: []any{"DELETE"}, Pattern: tokenPattern,
	},
	"rbacRule.roles": {
		Desc:    "Allowed roles, any of them. Empty: any role.",
		Default: "none",
		Example: []any{"admin"},
	},
	"rbacRule.scopes": {
		Desc:    "Required scopes, all of them.",
		Default: "none",
		Example: []any{"users:write"},
	},

	// ratelimit
	"plugin-ratelimit.key": {
		Desc:    "What a bucket is per: `ip`, `user` (the token's `sub`; needs jwt earlier in the chain), `route`, `header:NAME`, or a list of them. A `header:` key is advisory unless an authentication plugin comes earlier in the chain (a client changes the header to get a fresh bucket); `-check` warns otherwise.",
		Example: []any{"user", "header:X-Tenant"},
	},
	"plugin-ratelimit.limit": {
		Desc:     "Tokens added to a bucket per `period` (at least 1).",
		Required: true, Default: "none (required)",
		Example: 100, Min: ptr(1),
	},
	"plugin-ratelimit.period": {
		Desc:     "Refill period (at least 1ms). Tokens are added continuously, not all at once.",
		Required: true, Default: "none (required)",
		Example: "1m",
	},
	"plugin-ratelimit.burst": {
		Desc:    "Bucket size (at least 1).",
		Default: "`limit`",
		Example: 20, Min: ptr(1),
	},
	"plugin-ratelimit.cost": {
		Desc:    "Tokens one request takes (at least 1, at most `burst`).",
		Example: 5, Min: ptr(1),
	},
	"plugin-ratelimit.bucket": {
		Desc:    "Bucket name; routes naming the same bucket share their buckets.",
		Default: "the route's name",
		Example: "partner-api",
	},
	"plugin-ratelimit.headers": {
		Desc:    "Rate-limit response headers: `both`, `ietf` (RateLimit-Policy, RateLimit), `legacy` (RateLimit-Limit/-Remaining/-Reset) or `off`.",
		Example: "ietf", Enum: []string{"both", "ietf", "legacy", "off"},
	},
	"plugin-ratelimit.on_store_error": {
		Desc:    "When the store fails or times out: `allow` (fail open) or `deny` (503).",
		Example: "deny", Enum: []string{"allow", "deny"},
	},
	"plugin-ratelimit.store_timeout": {
		Desc:    "The longest a request waits for the store (Redis only).",
		Example: "30ms",
	},
	"plugin-ratelimit.sync": {
		Desc: "How an instance takes tokens from a Redis bucket: `exact` (one atomic script call per request) or `lease` (tokens taken " +
			"in batches sized from the observed rate, admitted locally, renewed ahead of need and given back when unused; never admits " +
			"more than `exact`, may admit up to instances × max batch fewer; see [ratelimit](plugins.md#ratelimit)). " +
			"With the in-process store both are exact.",
		Example: "lease", Enum: []string{"exact", "lease"},
	},

	// cors
	"plugin-cors.allowed_origins": {
		Desc:     "Origins allowed: `scheme://host[:port]`, `scheme://*.domain` for any subdomain, or `\"*\"` for any origin. `null` is refused.",
		Required: true, Default: "none (required)",
		Example: []any{"https://app.example.com", "https://*.example.com"},
	},
	"plugin-cors.allowed_methods": {
		Desc:    "Methods a preflight may ask for.",
		Example: []any{"GET", "POST", "PUT", "DELETE"}, Pattern: tokenPattern,
	},
	"plugin-cors.allowed_headers": {
		Desc:    "Request headers a preflight may ask for; `\"*\"` allows any.",
		Default: "none",
		Example: []any{"Authorization", "Content-Type"},
	},
	"plugin-cors.exposed_headers": {
		Desc:    "`Access-Control-Expose-Headers` of responses.",
		Default: "none",
		Example: []any{"X-Request-ID", "Retry-After"},
	},
	"plugin-cors.allow_credentials": {
		Desc:    "Send `Access-Control-Allow-Credentials: true`; not allowed with the `\"*\"` origin.",
		Example: true,
	},
	"plugin-cors.max_age": {
		Desc:    "`Access-Control-Max-Age` of preflight answers, in whole seconds; `0` sends none.",
		Example: "10m",
	},

	// security-headers
	"plugin-security-headers.hsts": {
		Desc:    "`Strict-Transport-Security` on HTTPS requests: `true` (max-age 2 years), `false`, or a mapping.",
		Default: "off",
		Example: map[string]any{"max_age": "365d", "include_subdomains": true, "preload": true},
	},
	"plugin-security-headers.frame_options": {
		Desc:    "`X-Frame-Options`: `DENY`, `SAMEORIGIN` (any case) or `off`.",
		Example: "SAMEORIGIN", Pattern: anyCase("DENY", "SAMEORIGIN", "off"),
	},
	"plugin-security-headers.content_type_nosniff": {
		Desc:    "Send `X-Content-Type-Options: nosniff`.",
		Example: false,
	},
	"plugin-security-headers.referrer_policy": {
		Desc:    "`Referrer-Policy`: a policy, a comma-separated fallback list of policies, or `off`.",
		Example: "no-referrer", Pattern: referrerPattern(),
	},
	"plugin-security-headers.csp": {
		Desc:    "`Content-Security-Policy` value, sent as written (one line).",
		Default: "none",
		Example: "default-src 'self'; frame-ancestors 'none'",
	},
	// ip-filter
	"plugin-ip-filter.allow": {
		Desc:    "Networks allowed, as CIDRs or bare addresses (a `/32` or `/128`), IPv4 and IPv6. When set, every client outside them gets 403.",
		Default: "none (every client not denied)",
		Example: []any{"10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"},
	},
	"plugin-ip-filter.deny": {
		Desc:    "Networks refused (403), as CIDRs or bare addresses; deny wins over `allow`.",
		Default: "none",
		Example: []any{"10.9.9.0/24", "192.0.2.7"},
	},

	// headers
	"plugin-headers.request": {
		Desc:    "Edits of the request before it is forwarded. Identity headers (`X-User-*`, every jwt `forward_claims`, api-key `forward_header` and `tls.forward_client_cert` name of the file) cannot be set or added.",
		Default: "none",
		Example: map[string]any{"set": map[string]any{"X-Env": "prod"}, "remove": []any{"X-Debug"}},
	},
	"plugin-headers.response": {
		Desc:    "Edits of the response the client gets: the upstream's, or the gateway's own when a later plugin or the upstream call answered.",
		Default: "none",
		Example: map[string]any{"set": map[string]any{"Cache-Control": "no-store"}, "remove": []any{"Server", "X-Powered-By"}},
	},
	"headerEdits.set": {
		Desc:    "Headers to set, replacing every value already there. Values are sent as written and may not hold control characters (CR, LF, NUL).",
		Default: "none",
		Example: map[string]any{"X-Env": "prod"},
	},
	"headerEdits.add": {
		Desc:    "Headers to add, keeping the values already there.",
		Default: "none",
		Example: map[string]any{"X-Served-By": "gatewayd"},
	},
	"headerEdits.remove": {
		Desc:    "Headers to remove, by name in any case.",
		Default: "none",
		Example: []any{"Server", "X-Powered-By"}, Pattern: tokenPattern,
	},

	// compress
	"plugin-compress.types": {
		Desc:    "Media types compressed, compared without parameters and case: `type/subtype`, `type/*`, or `*/*`.",
		Default: "JSON, XML, JavaScript, SVG and common text types (see plugins.md)",
		Example: []any{"application/json", "text/*"},
	},
	"plugin-compress.min_size": {
		Desc:    "The smallest body compressed; smaller ones are sent as they are.",
		Example: "4KiB",
	},
	"plugin-compress.level": {
		Desc:    "`fastest` (gzip 1, brotli 1), `default` (gzip 6, brotli 4) or `best` (gzip 9, brotli 9).",
		Example: "fastest", Enum: []string{"fastest", "default", "best"},
	},
	"plugin-compress.encodings": {
		Desc:    "Codings offered, in the order that breaks a tie between equal Accept-Encoding q-values.",
		Example: []any{"gzip"}, Enum: []string{"br", "gzip"},
	},

	"hsts.max_age": {
		Desc:    "`max-age`, in whole seconds.",
		Example: "365d",
	},
	"hsts.include_subdomains": {
		Desc:    "Add `includeSubDomains`.",
		Example: true,
	},
	"hsts.preload": {
		Desc:    "Add `preload`; needs `include_subdomains: true` and a `max_age` of at least 365d.",
		Example: true,
	},
}
