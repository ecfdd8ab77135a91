package config

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	methodOK = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
		"PATCH": true, "OPTIONS": true, "TRACE": true, "CONNECT": true}
)

type validator struct {
	file string
	errs errList
	// read collects the files readFile read, for Config.ReadFiles.
	read []ReadFile
}

// readFile reads the file a field names, reporting an error at n when it
// cannot, and records it for Config.ReadFiles (the reload hash and the
// watcher cover it).
func (v *validator) readFile(n *yaml.Node, path, file string) []byte {
	data, err := os.ReadFile(file)
	if err != nil {
		v.at(n, path, "cannot read the file: %v", err)
		return nil
	}
	v.read = append(v.read, ReadFile{Path: file, Sum: sha256.Sum256(data)})
	return data
}

func (v *validator) at(n *yaml.Node, path, format string, args ...any) {
	v.errs.add(Errorf(v.file, n, path, fmt.Sprintf(format, args...)))
}

func (c *Config) validate() error {
	v := &validator{file: c.File}
	if c.Version != 1 {
		v.at(c.Meta.Pos("version"), "version", "unsupported version %d (this gatewayd reads version 1)", c.Version)
	}
	v.hostPort(c.Meta.Pos("listen"), "listen", c.Listen)
	v.hostPort(c.Admin.Meta.Pos("listen"), "admin.listen", c.Admin.Listen)
	if c.Listen == c.Admin.Listen {
		v.at(c.Admin.Meta.Pos("listen"), "admin.listen", "must differ from listen (%s)", c.Listen)
	}
	switch {
	case c.TLS != nil:
		v.tls(c)
	case c.RedirectHTTP != "":
		v.redirectWithoutTLS(c)
	}
	v.server(&c.Server)
	v.log(&c.Log)
	v.runtime(&c.Runtime)
	if c.Tracing != nil {
		v.tracing(c.Tracing)
	}
	if c.Redis != nil {
		v.redis(c.Redis)
	}
	names := sortedKeys(c.Upstreams)
	for _, name := range names {
		v.upstream(c, name, c.Upstreams[name])
	}
	for _, name := range sortedKeys(c.Plugins) {
		v.pluginDef(c, name, c.Plugins[name])
	}
	if len(c.Routes) == 0 {
		v.at(c.Meta.Pos("routes"), "routes", "no routes: declare at least one route")
	}
	seen := map[string]int{}
	for i, r := range c.Routes {
		path := IndexPath("routes", i)
		if r == nil {
			v.at(c.Meta.Pos("routes"), path, "empty route")
			continue
		}
		if prev, dup := seen[r.Name]; dup && r.Name != "" {
			v.at(r.Meta.Pos("name"), path+".name", "duplicate route name %q (also routes[%d])", r.Name, prev)
		} else {
			seen[r.Name] = i
		}
		v.route(c, path, r)
	}
	c.ReadFiles = v.read
	return v.errs.err()
}

func (v *validator) hostPort(n *yaml.Node, path, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		v.at(n, path, "expected host:port such as \":8080\" or \"127.0.0.1:9901\", got %q", s)
		return
	}
	if host != "" && net.ParseIP(host) == nil && !nameRe.MatchString(host) {
		v.at(n, path, "invalid host %q", host)
	}
}

func (v *validator) server(s *Server) {
	m := s.Meta
	if s.ShutdownDelay > 0 && s.ShutdownDelay >= s.ShutdownTimeout {
		v.at(m.Pos("shutdown_delay"), "server.shutdown_delay", "must be shorter than shutdown_timeout (%s), which counts it: requests in flight would get no time to finish, got %s",
			s.ShutdownTimeout, s.ShutdownDelay)
	}
	if s.MaxRequestHeaderBytes < 1024 {
		v.at(m.Pos("max_request_header_bytes"), "server.max_request_header_bytes", "must be at least 1KiB, got %s", FormatSize(int64(s.MaxRequestHeaderBytes)))
	}
	if s.MaxRequestBodyBytes < 1 {
		v.at(m.Pos("max_request_body_bytes"), "server.max_request_body_bytes", "must be at least 1 byte")
	}
	if s.MaxConnections < 0 {
		v.at(m.Pos("max_connections"), "server.max_connections", "must not be negative, got %d", s.MaxConnections)
	}
	if s.MaxConnectionsPerIP < 0 {
		v.at(m.Pos("max_connections_per_ip"), "server.max_connections_per_ip", "must not be negative (0 for no cap), got %d", s.MaxConnectionsPerIP)
	}
	for i, p := range s.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			n := m.Pos("trusted_proxies")
			if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				n = n.Content[i]
			}
			v.at(n, IndexPath("server.trusted_proxies", i), "expected an IP address or CIDR such as 10.0.0.0/8, got %q", p)
		}
	}
}

func (v *validator) runtime(r *Runtime) {
	if r.GCPercent != 0 && (r.GCPercent < MinGCPercent || r.GCPercent > MaxGCPercent) {
		v.at(r.Meta.Pos("gc_percent"), "runtime.gc_percent", "must be between %d and %d, got %d", MinGCPercent, MaxGCPercent, r.GCPercent)
	}
	if r.MemoryLimit != 0 && r.MemoryLimit < MinMemoryLimit {
		v.at(r.Meta.Pos("memory_limit"), "runtime.memory_limit", "must be at least %s, got %s", FormatSize(MinMemoryLimit), FormatSize(int64(r.MemoryLimit)))
	}
}

func (v *validator) log(l *Log) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.at(l.Meta.Pos("level"), "log.level", "expected one of debug, info, warn, error, got %q", l.Level)
	}
	switch l.Format {
	case "json", "console":
	default:
		v.at(l.Meta.Pos("format"), "log.format", "expected json or console, got %q", l.Format)
	}
}

func (v *validator) redis(r *Redis) { r.validate(v) }

// headerTokenRe matches an HTTP header name (RFC 9110 token).
var headerTokenRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (v *validator) tracing(t *Tracing) {
	m := t.Meta
	if t.OTLPEndpoint == "" {
		v.at(m.Pos("otlp_endpoint"), "tracing.otlp_endpoint", "required: the OTLP collector, e.g. http://127.0.0.1:4318 (OTLP/HTTP) or grpc://127.0.0.1:4317 (OTLP/gRPC)")
	} else if msg := checkOTLPEndpoint(t.OTLPEndpoint); msg != "" {
		v.at(m.Pos("otlp_endpoint"), "tracing.otlp_endpoint", "%s", msg)
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 || t.SampleRatio != t.SampleRatio {
		v.at(m.Pos("sample_ratio"), "tracing.sample_ratio", "must be between 0 and 1, got %v", t.SampleRatio)
	}
	if t.ServiceName == "" {
		v.at(m.Pos("service_name"), "tracing.service_name", "must not be empty")
	}
	hn := m.Pos("headers")
	for _, name := range sortedKeys(t.Headers) {
		n := hn
		if k := mappingValue(hn, name); k != nil {
			n = k
		}
		if !headerTokenRe.MatchString(name) {
			v.at(n, "tracing.headers."+name, "invalid header name %q", name)
		}
		if strings.ContainsAny(t.Headers[name], "\r\n\x00") {
			v.at(n, "tracing.headers."+name, "the value must not contain CR, LF or NUL")
		}
	}
}

// checkOTLPEndpoint returns what is wrong with an OTLP collector URL, or "".
func checkOTLPEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("expected a URL such as http://127.0.0.1:4318 or grpc://127.0.0.1:4317, got %q", RedactURL(raw))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "grpc", "grpcs":
		if u.Path != "" && u.Path != "/" {
			return fmt.Sprintf("an OTLP/gRPC endpoint has no path, got %q", RedactURL(raw))
		}
	default:
		return fmt.Sprintf("expected an http://, https:// (OTLP/HTTP), grpc:// or grpcs:// (OTLP/gRPC) URL, got %q", RedactURL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("the URL must not have a query or fragment, got %q", RedactURL(raw))
	}
	return ""
}

func (v *validator) upstream(c *Config, name string, u *Upstream) {
	path := "upstreams." + name
	n := c.Meta.Pos("upstreams")
	if u == nil {
		v.at(n, path, "empty upstream: it needs targets")
		return
	}
	m := u.Meta
	if strings.HasPrefix(name, "builtin:") {
		v.at(m.Node, path, "names starting with \"builtin:\" are reserved")
	}
	if !nameRe.MatchString(name) {
		v.at(m.Node, path, "invalid name %q: use letters, digits, '_', '.', '-'", name)
	}
	if len(u.Targets) == 0 {
		v.at(m.Pos("targets"), path+".targets", "at least one target is required, e.g. http://127.0.0.1:9002")
	}
	positive := false
	seen := make(map[string]int, len(u.Targets))
	for i, t := range u.Targets {
		tpath := IndexPath(path+".targets", i)
		node := t.Meta.Node
		if t.Meta.Has("url") {
			node = t.Meta.Pos("url")
		}
		if msg := checkTarget(t.URL); msg != "" {
			v.at(node, tpath, "%s", msg)
		} else if j, dup := seen[canonicalTarget(t.URL)]; dup {
			v.at(node, tpath, "duplicate target %q (also targets[%d]): give it one entry with the combined weight", RedactURL(t.URL), j)
		} else {
			seen[canonicalTarget(t.URL)] = i
		}
		if t.Weight < 0 || t.Weight > MaxTargetWeight {
			v.at(t.Meta.Pos("weight"), tpath+".weight", "must be between 0 and %d, got %d", MaxTargetWeight, t.Weight)
		}
		positive = positive || t.Weight > 0
	}
	if len(u.Targets) > 0 && !positive {
		v.at(m.Pos("targets"), path+".targets", "every target has weight 0 (drained): at least one must take traffic")
	}
	v.retryOn(path, u)
	if b := u.RetryBudget; b != nil {
		bpath := path + ".retry_budget"
		if !(b.Ratio >= 0 && b.Ratio <= 1) {
			v.at(b.Meta.Pos("ratio"), bpath+".ratio", "must be between 0 and 1 (a share of the requests), got %g", b.Ratio)
		}
		if b.MinPerSecond < 0 || b.MinPerSecond > 1_000_000 {
			v.at(b.Meta.Pos("min_per_second"), bpath+".min_per_second", "must be between 0 and 1000000, got %d", b.MinPerSecond)
		}
		if w := b.Window.D(); w < time.Second || w > time.Minute || w%time.Second != 0 {
			v.at(b.Meta.Pos("window"), bpath+".window", "must be whole seconds from 1s to 1m, got %s", w)
		}
	}
	switch u.Balance {
	case "round_robin", "least_conn":
	default:
		v.at(m.Pos("balance"), path+".balance", "expected round_robin or least_conn, got %q", u.Balance)
	}
	if u.Retries < 0 || u.Retries > 10 {
		v.at(m.Pos("retries"), path+".retries", "must be between 0 and 10, got %d", u.Retries)
	}
	if u.MaxConnsPerTarget < 1 {
		v.at(m.Pos("max_conns_per_target"), path+".max_conns_per_target", "must be at least 1, got %d", u.MaxConnsPerTarget)
	}
	if u.EjectAfter < 1 {
		v.at(m.Pos("eject_after"), path+".eject_after", "must be at least 1, got %d", u.EjectAfter)
	}
	if h := u.HealthCheck; h != nil && !strings.HasPrefix(h.Path, "/") {
		v.at(h.Meta.Pos("path"), path+".health_check.path", "must start with '/', got %q", h.Path)
	}
	if targetsScheme(URLs(u.Targets)) == "mixed" {
		v.at(m.Pos("targets"), path+".targets", "mix http and https targets: a request would be encrypted or not depending on the target picked; make them all https (or split the upstream)")
	}
	if u.TLS != nil {
		v.upstreamTLS(path, u)
	}
}

// MaxTargetWeight is the largest weight of an upstream target.
const MaxTargetWeight = 10000

// RetryConnect is the retry_on condition for requests that got no
// connection.
const RetryConnect = "connect"

// retryOn checks an upstream's retry_on list: "connect" and status codes
// from 500 to 599, each once.
func (v *validator) retryOn(path string, u *Upstream) {
	n := u.Meta.Pos("retry_on")
	seen := map[string]bool{}
	for i, c := range u.RetryOn {
		node := n
		if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
			node = n.Content[i]
		}
		ipath := IndexPath(path+".retry_on", i)
		if seen[c] {
			v.at(node, ipath, "%q is listed twice", c)
			continue
		}
		seen[c] = true
		if c == RetryConnect {
			continue
		}
		code, err := strconv.Atoi(c)
		switch {
		case err != nil || len(c) != 3:
			hint := suggest(c, []string{RetryConnect}, "conditions")
			if strings.HasPrefix(strings.ToLower(c), "5x") {
				hint = ": list each status, such as 502, 503, 504"
			}
			if c == "timeout" || c == "reset" {
				hint = ": a request that was sent and got no answer is not retried (the upstream may have acted on it, and timeout bounds all attempts together)"
			}
			v.at(node, ipath, "expected %q or a status code from 500 to 599, got %q%s", RetryConnect, c, hint)
		case code < 500 || code > 599:
			v.at(node, ipath, "only 5xx statuses are retried (500 to 599), got %d", code)
		}
	}
	if u.Meta.Has("retry_on") && len(u.RetryOn) == 0 && u.Retries > 0 {
		v.at(n, path+".retry_on", "is empty, so retries: %d never applies: list conditions such as [connect, 503] or set retries: 0", u.Retries)
	}
}

// canonicalTarget returns the form of a valid target URL that two
// spellings of the same target share.
func canonicalTarget(t string) string {
	u, err := url.Parse(t)
	if err != nil {
		return t
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

func checkTarget(t string) string {
	u, err := url.Parse(t)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("expected a URL such as http://127.0.0.1:9002, got %q", t)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return fmt.Sprintf("a target is scheme://host:port only (no path, query or credentials), got %q", t)
	}
	return ""
}

func (v *validator) pluginDef(c *Config, name string, n *yaml.Node) {
	path := "plugins." + name
	if !nameRe.MatchString(name) {
		v.at(n, path, "invalid name %q: use letters, digits, '_', '.', '-'", name)
	}
	if n == nil || n.Kind != yaml.MappingNode {
		v.at(c.Meta.Pos("plugins"), path, "expected a mapping with a type key, e.g. {type: jwt, ...}")
		return
	}
	if t := mappingValue(n, "type"); t == nil || t.Kind != yaml.ScalarNode || t.Value == "" {
		v.at(n, path+".type", "missing type: name the plugin kind, e.g. type: jwt")
	}
}

func (v *validator) route(c *Config, path string, r *Route) {
	m := r.Meta
	if r.Name == "" {
		v.at(m.Node, path+".name", "every route needs a name (used in metrics and logs)")
	} else if !nameRe.MatchString(r.Name) {
		v.at(m.Pos("name"), path+".name", "invalid name %q: use letters, digits, '_', '.', '-'", r.Name)
	}
	mm := r.Match.Meta
	if !m.Has("match") {
		v.at(m.Node, path+".match", "missing match: give path or path_prefix")
	} else {
		switch {
		case r.Match.Path != "" && r.Match.PathPrefix != "":
			v.at(mm.Pos("path_prefix"), path+".match", "give either path or path_prefix, not both")
		case r.Match.Path == "" && r.Match.PathPrefix == "":
			v.at(mm.Node, path+".match", "give path (exact) or path_prefix")
		}
		for _, f := range []struct{ key, val string }{{"path", r.Match.Path}, {"path_prefix", r.Match.PathPrefix}} {
			if f.val != "" && !strings.HasPrefix(f.val, "/") {
				v.at(mm.Pos(f.key), path+".match."+f.key, "must start with '/', got %q", f.val)
			}
		}
		for i, meth := range r.Match.Methods {
			if !methodOK[meth] {
				hint := ""
				if methodOK[strings.ToUpper(meth)] {
					hint = fmt.Sprintf(" (write %s)", strings.ToUpper(meth))
				}
				v.at(seqItem(mm.Pos("methods"), i), IndexPath(path+".match.methods", i), "unknown method %q%s", meth, hint)
			}
		}
	}
	switch {
	case r.Upstream == "":
		v.at(m.Node, path+".upstream", "missing upstream: name one of upstreams: or %s", BuiltinAuth)
	case r.Upstream == BuiltinAuth:
		if c.Auth == nil {
			v.at(m.Pos("upstream"), path+".upstream", "%s needs an auth: section", BuiltinAuth)
		}
	default:
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			v.at(m.Pos("upstream"), path+".upstream", "unknown upstream %q%s", r.Upstream, suggest(r.Upstream, sortedKeys(c.Upstreams), "upstreams"))
		}
	}
	if r.StripPrefix && r.Match.PathPrefix == "" {
		v.at(m.Pos("strip_prefix"), path+".strip_prefix", "needs match.path_prefix")
	}
	if rw := r.Rewrite; rw != nil {
		switch {
		case rw.Path == "":
			v.at(rw.Meta.Node, path+".rewrite.path", "missing path: give the upstream path template, e.g. /internal/items/{id}")
		case r.StripPrefix:
			v.at(m.Pos("strip_prefix"), path+".strip_prefix", "strip_prefix and rewrite.path are mutually exclusive: rewrite.path sets the whole upstream path")
		}
	}
	v.webSocket(m, path, r)
	for i, p := range r.Plugins {
		ipath := IndexPath(path+".plugins", i)
		switch {
		case p == nil:
			v.at(m.Pos("plugins"), ipath, "empty plugin entry")
		case p.Kind == yaml.ScalarNode:
			if p.Value == "" {
				v.at(p, ipath, "empty plugin name")
			}
		case p.Kind == yaml.MappingNode:
			if len(p.Content) != 2 {
				v.at(p, ipath, "a plugin entry is a name or a one-key map {name: {settings}}, got %d keys", len(p.Content)/2)
			}
		default:
			v.at(p, ipath, "a plugin entry is a name or a one-key map {name: {settings}}")
		}
	}
}

func seqItem(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// webSocket checks a route's websocket options.
func (v *validator) webSocket(m Meta, path string, r *Route) {
	if !r.WebSocket {
		if m.Has("websocket_idle_timeout") {
			v.at(m.Pos("websocket_idle_timeout"), path+".websocket_idle_timeout", "needs websocket: true")
		}
		return
	}
	if r.Upstream == BuiltinAuth {
		v.at(m.Pos("websocket"), path+".websocket", "%s does not serve WebSocket", BuiltinAuth)
	}
	if ms := r.Match.Methods; len(ms) > 0 && !slices.Contains(ms, "GET") {
		v.at(m.Pos("websocket"), path+".websocket", "a WebSocket handshake is a GET: add GET to match.methods")
	}
	if d := r.WebSocketIdleTimeout.D(); d < time.Second {
		v.at(m.Pos("websocket_idle_timeout"), path+".websocket_idle_timeout", "must be at least 1s, got %s", d)
	}
}
