package gateway

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/router"
	"github.com/gatewayd/gatewayd/pkg/tracing"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// AuthHandler serves the in-process auth service (upstream builtin:auth).
type AuthHandler interface {
	Handle(ctx *fasthttp.RequestCtx)
}

// route is one compiled route: what the router's Value holds.
type route struct {
	name         string
	chain        *plugins.Chain
	upstream     *proxy.Upstream
	builtin      AuthHandler
	upstreamName string
	stripPrefix  []byte
	// rewrite, when set, builds the upstream path from the route's
	// parameters (rewrite.path).
	rewrite      *router.Rewrite
	preserveHost bool
	timeout      time.Duration
	metrics      *metrics.Route
	upDuration   *vm.PrometheusHistogram
	// websocket is set on routes with websocket: true; wsIdle is their
	// websocket_idle_timeout and wsOpen, wsOpened their tunnel metrics.
	websocket bool
	wsIdle    time.Duration
	wsOpen    *vm.Gauge
	wsOpened  *vm.Counter
	// signature summarises the route's settings for reload diffs.
	signature string
	// pattern is the path the route matches, for the http.route span
	// attribute: the exact path, or the prefix followed by "*".
	pattern string
}

// routePattern renders a route's path match for the http.route attribute.
func routePattern(m config.Match) string {
	if m.Path != "" {
		return m.Path
	}
	return m.PathPrefix + "*"
}

// UnmatchedRoute is the route label of requests no route matched.
const UnmatchedRoute = "unmatched"

// generation is one compiled configuration: route table, plugin chains and
// references to the upstreams it uses. Requests hold it (inflight) from
// routing to the end of the response; it is closed once retired and idle.
type generation struct {
	cfg      *config.Config
	table    *router.Table
	routes   []*route
	identity *proxy.IdentityHeaders
	// dropUnderscore is server.drop_underscore_headers.
	dropUnderscore bool
	// warnings are the configuration warnings found while building.
	warnings []*config.Warning
	// files are the files plugins read while building (plugins.FileUser):
	// a reload rebuilds when one of them changed.
	files []plugins.File
	// needsStore says /readyz includes the store: a plugin of a route
	// fails closed on store errors (plugins.StoreDependent), or
	// admin.readiness_requires_store is set.
	needsStore bool
	trusted    *proxy.TrustedProxies
	// tls holds the certificates and client certificate settings of the
	// TLS listener (nil without a tls: section); forwardCert is its
	// forward_client_cert header name, nil when off.
	tls         *tlsState
	forwardCert []byte
	releases    []func()
	// upstreams are the upstreams the generation acquired, by name.
	upstreams map[string]*proxy.Upstream

	unmatched *metrics.Route
	// tracer records the spans of sampled requests; nil with tracing off.
	// Consecutive generations with the same tracing: settings share it;
	// it is shut down with the last of them (see Gateway.retire).
	tracer *tracing.Tracer
	// accessQuery is log.access_log_query.
	accessQuery bool

	inflight  atomic.Int64
	retired   atomic.Bool
	idle      chan struct{}
	closeOnce sync.Once
}

// deps are the long-lived things a generation is built with.
type deps struct {
	registry  *plugins.Registry
	env       plugins.Env // Route is set per route
	upstreams *upstreamPool
	auth      AuthHandler
}

// build compiles cfg into a generation. On error everything acquired so far
// is released and every error found is returned (as *config.Error values).
func build(cfg *config.Config, d *deps) (*generation, error) {
	g := &generation{cfg: cfg, idle: make(chan struct{}), unmatched: metrics.ForRoute(UnmatchedRoute), accessQuery: cfg.Log.AccessLogQuery}
	// Warnings go to this generation (and to the caller's d.env.Warn, which
	// sees them even when the build fails); the deps are copied so that
	// builds never share a collector.
	dw := *d
	outer := d.env.Warn
	dw.env.Warn = func(w *config.Warning) {
		g.warnings = append(g.warnings, w)
		if outer != nil {
			outer(w)
		}
	}
	d = &dw
	var errs []error
	fail := func(n *yaml.Node, path, format string, args ...any) {
		errs = append(errs, config.Errorf(cfg.File, n, path, fmt.Sprintf(format, args...)))
	}

	tp, err := proxy.ParseTrustedProxies(cfg.Server.TrustedProxies)
	if err != nil {
		fail(cfg.Server.Meta.Pos("trusted_proxies"), "server.trusted_proxies", "%v", err)
	}
	g.trusted = tp
	g.dropUnderscore = cfg.Server.DropUnderscoreHeaders
	g.needsStore = cfg.Admin.ReadinessRequiresStore

	var claimHeaders []string
	if cfg.TLS != nil {
		st, terrs := buildTLS(cfg, d.env.Now(), d.env.Warn)
		errs = append(errs, terrs...)
		if st != nil {
			g.tls, g.forwardCert = st, st.forward
		}
		if h := cfg.TLS.ForwardClientCert; h != "" {
			// Only the gateway sets it, from the verified certificate.
			claimHeaders = append(claimHeaders, h)
		}
	}

	ups := map[string]*proxy.Upstream{}
	for _, name := range sortedKeys(cfg.Upstreams) {
		u := cfg.Upstreams[name]
		if u == nil {
			continue
		}
		if terrs := checkUpstreamTLS(cfg, name, u, d.env.Warning); len(terrs) > 0 {
			errs = append(errs, terrs...)
			continue
		}
		if probs := proxyConfig(name, u).Problems(); len(probs) > 0 {
			for _, e := range probs {
				errs = append(errs, upstreamProblem(cfg.File, name, u, e))
			}
			continue
		}
		up, release, err := d.upstreams.acquire(proxyConfig(name, u))
		if err != nil {
			fail(u.Meta.Node, "upstreams."+name, "%v", err)
			continue
		}
		g.releases = append(g.releases, release)
		ups[name] = up
	}

	g.upstreams = ups

	var rrs []*router.Route
	for i, rc := range cfg.Routes {
		if rc == nil {
			continue
		}
		path := config.IndexPath("routes", i)
		chain, cerrs := buildChain(cfg, path, rc, d, &claimHeaders)
		errs = append(errs, cerrs...)
		r := &route{
			name:         rc.Name,
			chain:        chain,
			upstreamName: rc.Upstream,
			preserveHost: rc.PreserveHost,
			timeout:      rc.Timeout.D(),
			metrics:      metrics.ForRoute(rc.Name),
			pattern:      routePattern(rc.Match),
		}
		if rc.Upstream == config.BuiltinAuth {
			r.builtin = d.auth
			if d.auth == nil {
				fail(rc.Meta.Pos("upstream"), path+".upstream", "%s is not available: the auth: section failed to load", config.BuiltinAuth)
			}
		} else {
			r.upstream = ups[rc.Upstream]
			r.upDuration = metrics.UpstreamDuration(rc.Upstream)
		}
		if rc.WebSocket {
			r.websocket = true
			r.wsIdle = rc.WebSocketIdleTimeout.D()
			r.wsOpen, r.wsOpened = r.metrics.WebSocket()
		}
		if rc.StripPrefix {
			r.stripPrefix = []byte(strings.TrimSuffix(rc.Match.PathPrefix, "/"))
		}
		g.files = append(g.files, usedFiles(chain.Plugins()...)...)
		g.needsStore = g.needsStore || failsClosed(chain.Plugins()...)
		r.signature = routeSignature(rc, chain)
		g.routes = append(g.routes, r)
		methods := routeMethods(rc.Match.Methods, chain)
		rr := &router.Route{
			Name:       rc.Name,
			Host:       rc.Match.Host,
			Path:       rc.Match.Path,
			PathPrefix: rc.Match.PathPrefix,
			Methods:    methods,
			Value:      r,
		}
		for _, name := range rc.Match.HeaderKeys() {
			rr.Headers = append(rr.Headers, router.Header{Name: name, Value: rc.Match.Headers[name]})
		}
		if rc.Rewrite != nil {
			rr.Rewrite = rc.Rewrite.Path
		}
		rrs = append(rrs, rr)
	}

	// Named instances no route uses are still built once, so -check and a
	// reload report their mistakes. Those that write headers are checked
	// against the identity headers once every instance has claimed its own,
	// and closed when build returns.
	var unusedWriters []plugins.HeaderWriter
	used := map[string]bool{}
	for _, rc := range cfg.Routes {
		if rc == nil {
			continue
		}
		for _, p := range rc.Plugins {
			if name, _ := entryName(p); name != "" {
				used[name] = true
			}
		}
	}
	for _, name := range sortedKeys(cfg.Plugins) {
		if used[name] {
			continue
		}
		// No route uses it, so there is nothing to warn about yet.
		env := d.env
		env.Warn = nil
		p, _, err := buildNamed(cfg, name, d, &env)
		if err != nil {
			errs = append(errs, config.Errors(err)...)
			continue
		}
		// Its headers are identity headers all the same: a route may use
		// it after the next reload, and stripping never depends on which
		// routes use which instance.
		claimHeaders = append(claimHeaders, claimedHeaders(p)...)
		g.files = append(g.files, usedFiles(p)...)
		if hw, ok := p.(plugins.HeaderWriter); ok {
			unusedWriters = append(unusedWriters, hw)
		}
		defer func() { _ = p.Close() }()
	}

	if len(errs) == 0 {
		table, err := router.New(rrs)
		if err != nil {
			for _, e := range config.Errors(err) {
				var re *router.RouteError
				if errors.As(e, &re) && re.Index >= 0 && re.Index < len(cfg.Routes) {
					rc := cfg.Routes[re.Index]
					msg := re.Msg
					if re.Other >= 0 && re.Other < len(cfg.Routes) && cfg.Routes[re.Other].Meta.Node != nil {
						// Say where the other route is, so both can be found.
						msg += fmt.Sprintf("; routes[%d] is at %s:%d", re.Other, cfg.File, cfg.Routes[re.Other].Meta.Node.Line)
					}
					errs = append(errs, config.Errorf(cfg.File, routeFieldNode(rc, re.Field),
						config.IndexPath("routes", re.Index)+"."+re.Field, msg))
				} else {
					errs = append(errs, config.Errorf(cfg.File, cfg.Meta.Pos("routes"), "routes", e.Error()))
				}
			}
		}
		g.table = table
		if table != nil {
			for i, rr := range rrs {
				g.routes[i].rewrite = table.Rewrite(rr)
			}
		}
	}
	g.identity = proxy.NewIdentityHeaders(claimHeaders)
	errs = append(errs, checkHeaderWriters(g.identity, g.routes, unusedWriters)...)
	// A condition on a header removed before routing could never hold.
	for i, rc := range cfg.Routes {
		if rc == nil {
			continue
		}
		for _, name := range rc.Match.HeaderKeys() {
			var why string
			switch {
			case g.identity.Contains([]byte(name)):
				why = "it is an identity header, removed from client requests before routing"
			case g.dropUnderscore && strings.Contains(name, "_"):
				why = "server.drop_underscore_headers removes it before routing"
			default:
				continue
			}
			fail(rc.Match.HeaderPos(name), config.IndexPath("routes", i)+".match.headers."+name, "cannot match on %s: %s", name, why)
		}
	}
	g.warnings = config.SortWarnings(g.warnings)

	if len(errs) > 0 {
		g.close()
		return nil, config.SortErrors(errors.Join(errs...))
	}
	return g, nil
}

// routeFieldNode returns the node of a route's field as router.RouteError
// names it ("match.path", "match.methods[1]", "match.headers.X-Canary",
// "rewrite.path", "name").
func routeFieldNode(rc *config.Route, field string) *yaml.Node {
	switch {
	case field == "name":
		return rc.Meta.Pos("name")
	case strings.HasPrefix(field, "rewrite.") && rc.Rewrite != nil:
		return rc.Rewrite.Meta.Pos(strings.TrimPrefix(field, "rewrite."))
	case strings.HasPrefix(field, "match.headers."):
		return rc.Match.HeaderPos(strings.TrimPrefix(field, "match.headers."))
	case strings.HasPrefix(field, "match.methods["):
		var i int
		if _, err := fmt.Sscanf(field, "match.methods[%d]", &i); err == nil {
			if n := rc.Match.Meta.Pos("methods"); n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				return n.Content[i]
			}
		}
		return rc.Match.Meta.Pos("methods")
	}
	return rc.Match.Meta.Pos(strings.TrimPrefix(field, "match."))
}

// entryName returns the plugin name of a route's plugin entry and its
// inline settings node (nil for a bare name).
func entryName(p *yaml.Node) (string, *yaml.Node) {
	switch {
	case p == nil:
		return "", nil
	case p.Kind == yaml.ScalarNode:
		return p.Value, nil
	case p.Kind == yaml.MappingNode && len(p.Content) == 2:
		v := p.Content[1]
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			v = nil
		}
		return p.Content[0].Value, v
	}
	return "", nil
}

func buildChain(cfg *config.Config, path string, rc *config.Route, d *deps, claims *[]string) (*plugins.Chain, []error) {
	var (
		errs          []error
		ps            []plugins.Plugin
		kinds         []string
		authenticated bool
		identified    bool
		// failed says an earlier entry failed to build (its error is
		// reported): it may be the very plugin a later one needs, so
		// dependency checks count it as present rather than add false
		// follow-on errors.
		failed bool
	)
	for j, entry := range rc.Plugins {
		epath := config.IndexPath(path+".plugins", j)
		name, settings := entryName(entry)
		if name == "" {
			continue // reported by config validation
		}
		var (
			p    plugins.Plugin
			kind string
			err  error
		)
		env := d.env
		env.Route = rc.Name
		env.Methods = rc.Match.Methods
		env.Authenticated = authenticated
		if _, named := cfg.Plugins[name]; named {
			if settings != nil {
				errs = append(errs, config.Errorf(cfg.File, entry.Content[0], epath+"."+name,
					fmt.Sprintf("%q is a named instance under plugins: and takes no inline settings; define another instance instead", name)))
				failed = true
				continue
			}
			// The instance's warnings point at its definition under
			// plugins:, which several routes may use: say which one.
			if warn := d.env.Warn; warn != nil {
				env.Warn = func(w *config.Warning) {
					c := *w
					c.Msg = fmt.Sprintf("in route %q (%s): %s", rc.Name, epath, w.Msg)
					warn(&c)
				}
			}
			p, kind, err = buildNamed(cfg, name, d, &env)
		} else {
			kind = name
			f, ok := d.registry.Lookup(kind)
			if !ok {
				known := append(d.registry.Kinds(), sortedKeys(cfg.Plugins)...)
				hint := ""
				if s := config.Closest(name, known); s != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", s)
				} else {
					hint = " (built-in: " + strings.Join(d.registry.Kinds(), ", ") + "; or a name under plugins:)"
				}
				n := entry
				if entry.Kind == yaml.MappingNode {
					n = entry.Content[0]
				}
				errs = append(errs, config.Errorf(cfg.File, n, epath, fmt.Sprintf("unknown plugin %q%s", name, hint)))
				failed = true
				continue
			}
			p, err = f.Build(config.Section{File: cfg.File, Path: epath + "." + name, Node: settings}, &env)
		}
		if err != nil {
			errs = append(errs, config.Errors(err)...)
			failed = true
			continue
		}
		if rq, ok := p.(plugins.Requirer); ok && !failed {
			for _, need := range rq.Requires() {
				if need == plugins.Identity {
					if !identified {
						errs = append(errs, config.Errorf(cfg.File, entry, epath,
							fmt.Sprintf("%s needs an identity plugin (jwt or api-key) earlier in this route's plugins (order matters: they run as listed)", kind)))
					}
					continue
				}
				if !contains(kinds, need) {
					errs = append(errs, config.Errorf(cfg.File, entry, epath,
						fmt.Sprintf("%s needs a %s plugin earlier in this route's plugins (order matters: they run as listed)", kind, need)))
				}
			}
		}
		*claims = append(*claims, claimedHeaders(p)...)
		if a, ok := p.(plugins.Authenticator); ok {
			identified = true
			authenticated = authenticated || a.Authenticates()
		}
		ps = append(ps, p)
		kinds = append(kinds, kind)
	}
	chain := plugins.NewChain(ps, kinds)
	if len(errs) > 0 {
		_ = chain.Close()
		return plugins.NewChain(nil, nil), errs
	}
	return chain, nil
}

// upstreamProblem turns one of proxy.Config.Problems ("field: message")
// into a configuration error at the field's line, under upstreams.NAME.
func upstreamProblem(file, name string, u *config.Upstream, e error) error {
	path := "upstreams." + name
	field, msg, ok := strings.Cut(e.Error(), ": ")
	if !ok {
		return config.Errorf(file, u.Meta.Node, path, e.Error())
	}
	// The proxy's names for settings the YAML spells differently.
	if field == "max_response_body_size" {
		field = "max_response_body_bytes"
	}
	key, sub, _ := strings.Cut(field, ".")
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	n := u.Meta.Pos(key)
	switch {
	case key == "health_check" && u.HealthCheck != nil && sub != "":
		n = u.HealthCheck.Meta.Pos(sub)
	case key == "tls" && u.TLS != nil && sub != "":
		n = u.TLS.Meta.Pos(sub)
	case key == "retry_budget" && u.RetryBudget != nil && sub != "":
		n = u.RetryBudget.Meta.Pos(sub)
	}
	return config.Errorf(file, n, path+"."+field, msg)
}

// failsClosed reports whether one of the plugins answers 503 when the
// store cannot answer.
func failsClosed(ps ...plugins.Plugin) bool {
	for _, p := range ps {
		if sd, ok := p.(plugins.StoreDependent); ok && sd.FailsClosedOnStoreError() {
			return true
		}
	}
	return false
}

// usedFiles returns the files the plugins read while being built.
func usedFiles(ps ...plugins.Plugin) []plugins.File {
	var out []plugins.File
	for _, p := range ps {
		if fu, ok := p.(plugins.FileUser); ok {
			out = append(out, fu.Files()...)
		}
	}
	return out
}

// filesChanged reports whether a file the generation's plugins read has
// changed (or cannot be read any more) since they read it.
func (g *generation) filesChanged() bool {
	for _, f := range g.files {
		data, err := os.ReadFile(f.Path)
		if err != nil || sha256.Sum256(data) != f.Sum {
			return true
		}
	}
	return false
}

// buildNamed builds the named instance name (plugins: section) with env,
// which describes the route it serves.
func buildNamed(cfg *config.Config, name string, d *deps, env *plugins.Env) (plugins.Plugin, string, error) {
	def := cfg.Plugins[name]
	path := "plugins." + name
	if def == nil || def.Kind != yaml.MappingNode {
		return nil, "", config.Errorf(cfg.File, def, path, "expected a mapping with a type key")
	}
	var kind string
	settings := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: def.Line, Column: def.Column}
	var typeNode *yaml.Node
	for i := 0; i+1 < len(def.Content); i += 2 {
		if def.Content[i].Value == "type" {
			typeNode = def.Content[i+1]
			kind = typeNode.Value
			continue
		}
		settings.Content = append(settings.Content, def.Content[i], def.Content[i+1])
	}
	if kind == "" {
		return nil, "", config.Errorf(cfg.File, def, path+".type", "missing type: name the plugin kind, e.g. type: jwt")
	}
	f, ok := d.registry.Lookup(kind)
	if !ok {
		hint := ""
		if s := config.Closest(kind, d.registry.Kinds()); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		} else {
			hint = " (built-in: " + strings.Join(d.registry.Kinds(), ", ") + ")"
		}
		return nil, "", config.Errorf(cfg.File, typeNode, path+".type", fmt.Sprintf("unknown plugin type %q%s", kind, hint))
	}
	p, err := f.Build(config.Section{File: cfg.File, Path: path, Node: settings}, env)
	return p, kind, err
}

// routeMethods returns the methods the router accepts for a route: the
// listed ones plus those its plugins answer themselves (a CORS preflight
// must reach the cors plugin on a GET-only route). No list means any method.
func routeMethods(listed []string, chain *plugins.Chain) []string {
	if len(listed) == 0 {
		return nil
	}
	methods := listed
	for _, p := range chain.Plugins() {
		ma, ok := p.(plugins.MethodAnswerer)
		if !ok {
			continue
		}
		for _, m := range ma.AnsweredMethods() {
			if !contains(methods, m) {
				methods = append(append([]string(nil), methods...), m)
			}
		}
	}
	return methods
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// checkHeaderWriters asks every plugin that writes request headers named in
// its settings (plugins.HeaderWriter) to refuse the identity headers of ids,
// which are complete only once every plugin of the file is built. A named
// instance that several routes use reports the same errors for each; the
// caller's SortErrors keeps one.
func checkHeaderWriters(ids *proxy.IdentityHeaders, routes []*route, unused []plugins.HeaderWriter) []error {
	isIdentity := func(name string) bool { return ids.Contains([]byte(name)) }
	var errs []error
	check := func(hw plugins.HeaderWriter) {
		if err := hw.CheckHeaders(isIdentity); err != nil {
			errs = append(errs, config.Errors(err)...)
		}
	}
	for _, r := range routes {
		if r.chain == nil {
			continue
		}
		for _, p := range r.chain.Plugins() {
			if hw, ok := p.(plugins.HeaderWriter); ok {
				check(hw)
			}
		}
	}
	for _, hw := range unused {
		check(hw)
	}
	return errs
}

// claimedHeaders returns the identity headers p claims (see
// plugins.HeaderClaimer), or nil.
func claimedHeaders(p plugins.Plugin) []string {
	if hc, ok := p.(plugins.HeaderClaimer); ok {
		return hc.ClaimHeaders()
	}
	return nil
}

func routeSignature(rc *config.Route, chain *plugins.Chain) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%v|%s|%v|%v|%s|%v|%s|", rc.Match.Host, rc.Match.Path, rc.Match.PathPrefix,
		rc.Match.Methods, rc.Upstream, rc.StripPrefix, rc.PreserveHost, rc.Timeout, rc.WebSocket, rc.WebSocketIdleTimeout)
	for _, name := range rc.Match.HeaderKeys() {
		fmt.Fprintf(&b, "%s=%s|", name, rc.Match.Headers[name])
	}
	if rc.Rewrite != nil {
		b.WriteString("rewrite=" + rc.Rewrite.Path + "|")
	}
	for _, p := range rc.Plugins {
		out, _ := yaml.Marshal(p)
		b.Write(out)
	}
	return b.String()
}

// close releases the generation's plugins and upstream references, once.
func (g *generation) close() {
	g.closeOnce.Do(func() {
		for _, r := range g.routes {
			if r.chain != nil {
				_ = r.chain.Close()
			}
		}
		for _, rel := range g.releases {
			rel()
		}
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
