// Package gateway is the running gateway: it compiles a configuration into
// a generation (route table, plugin chains, upstream references), serves
// requests on the live generation, swaps generations atomically on reload
// and drains on shutdown.
package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/configs"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/tracing"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel"
	"go.uber.org/zap"
)

// Options configure a Gateway.
type Options struct {
	// Registry holds the plugin factories.
	Registry *plugins.Registry
	// Logger is the process logger (errors, reloads); access lines go to
	// its "access" child.
	Logger *zap.Logger
	// Store is the shared state (Redis or in-process). The Gateway does not
	// own it: the caller closes it after Shutdown.
	Store store.Store
	// Auth serves builtin:auth; nil when the configuration has no auth:.
	Auth AuthHandler
	// Version is reported by gateway_build_info.
	Version string
}

// Gateway serves one configuration at a time and can switch to another.
type Gateway struct {
	opts           Options
	logger         *zap.Logger
	access         *zap.Logger
	upstreamErrors *zap.Logger
	accessLog      atomic.Bool
	cur            atomic.Pointer[generation]
	deps           *deps
	draining       atomic.Bool
	reloadMu       sync.Mutex
	retiring       sync.WaitGroup
	// open are the generations serving or retiring (guarded by reloadMu):
	// the metrics of their routes and upstreams are kept.
	open    map[*generation]struct{}
	tunnels tunnelSet

	server *fasthttp.Server
	admin  *fasthttp.Server
	// redirect serves redirect_http (nil without it).
	redirect *fasthttp.Server
	// tlsListener says the client listener serves TLS: fixed at start, as
	// switching between TLS and plain HTTP needs a restart.
	tlsListener bool
	// httpsPort is the TLS listener's port as redirects name it: empty for
	// 443. Set by Serve.
	httpsPort atomic.Pointer[string]
	// maxConns and maxConnsPerIP are the client listener's connection caps
	// (server.max_connections, fasthttp's default when 0, and
	// server.max_connections_per_ip).
	maxConns, maxConnsPerIP int
	// streamBodies says request bodies arrive as streams (the threshold is
	// below the body limit): prepareBody then buffers those up to
	// bodyThreshold and streams the rest, within maxBody.
	streamBodies  bool
	bodyThreshold int
	maxBody       int64
	// oversized holds the request headers whose Content-Length was over
	// maxBody, as HeaderReceived saw them, for Handle to answer 413 without
	// reading the body (see checkContentLength); oversizedN counts them, so the
	// common path costs one atomic load.
	oversized  sync.Map // *fasthttp.RequestHeader -> struct{}
	oversizedN atomic.Int64
	// adminAddr is the admin listener's TCP address, set by Serve (nil on
	// other listeners): state-changing admin requests must name it (or
	// localhost) in Host.
	adminAddr atomic.Pointer[net.TCPAddr]
	// watcher reloads on file changes while the live configuration says
	// watch: true and the gateway is serving (see syncWatch).
	watchMu sync.Mutex
	serving bool
	watcher *configWatcher
}

// New builds the first generation of cfg. It returns every configuration
// error found.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	g := &Gateway{
		opts:           opts,
		logger:         opts.Logger,
		access:         opts.Logger.Named("access"),
		upstreamErrors: opts.Logger.Named("upstream"),
	}
	g.deps = &deps{
		registry: opts.Registry,
		env: plugins.Env{
			Store:     opts.Store,
			Logger:    opts.Logger,
			Resources: plugins.NewResources(),
			Now:       time.Now,
		},
		upstreams: newUpstreamPool(opts.Logger.Named("upstream")),
		auth:      opts.Auth,
	}
	gen, err := build(cfg, g.deps)
	if err != nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(g.tracingError))
	if gen.tracer, err = g.newTracer(cfg.Tracing); err != nil {
		gen.close()
		return nil, err
	}
	g.cur.Store(gen)
	g.trackGeneration(gen)
	g.accessLog.Store(*cfg.Log.AccessLog)
	applyRuntime(cfg.Runtime)
	for _, w := range gen.warnings {
		g.logger.Warn("configuration warning: " + w.String())
	}
	g.server = g.newServer(cfg)
	g.tlsListener = cfg.TLS != nil
	if cfg.RedirectHTTP != "" {
		g.redirect = g.newRedirectServer(cfg)
	}
	if gen.tls != nil {
		metrics.SetTLSCertificates(gen.tls.certs.infos)
	}
	g.admin = &fasthttp.Server{
		Handler:               g.handleAdmin,
		Name:                  "gatewayd-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		CloseOnShutdown:       true,
	}
	metrics.SetBuildInfo(opts.Version)
	metrics.SetLastReloadSuccess(time.Now())
	// Export the counters at zero so increase() sees their first event.
	metrics.ConfigReloads("success")
	metrics.ConfigReloads("failure")
	if opts.Store != nil {
		metrics.StoreErrors("ping")
	}
	metrics.ConnectionsRejected(rejectMaxConnections)
	metrics.ConnectionsRejected(rejectPerIP)
	return g, nil
}

// newTracer builds the tracer of a tracing: section (nil: tracing off).
func (g *Gateway) newTracer(c *config.Tracing) (*tracing.Tracer, error) {
	if c == nil {
		return nil, nil
	}
	tr, err := tracing.New(c, tracing.Options{Version: g.opts.Version})
	if err != nil {
		return nil, err
	}
	g.logger.Info("tracing on", zap.String("otlp_endpoint", tr.Endpoint()),
		zap.Float64("sample_ratio", c.SampleRatio), zap.String("service_name", c.ServiceName))
	return tr, nil
}

// tracingError logs what the OpenTelemetry SDK reports, chiefly failed
// exports (the collector is down: spans are dropped, requests are not
// affected). The exporter dials host:port without the URL's credentials,
// which travel in a header, so its errors hold none.
func (g *Gateway) tracingError(err error) {
	g.logger.Named("tracing").Warn("tracing: the OpenTelemetry SDK reported an error; spans may be lost",
		zap.String("otlp_endpoint", g.tracingEndpoint()), zap.Error(err))
}

func (g *Gateway) tracingEndpoint() string {
	if gen := g.cur.Load(); gen != nil && gen.tracer != nil {
		return gen.tracer.Endpoint()
	}
	return ""
}

// shutdownTracer exports the spans tr still holds and stops its exporter.
func (g *Gateway) shutdownTracer(ctx context.Context, tr *tracing.Tracer) {
	if tr == nil {
		return
	}
	if err := tr.Shutdown(ctx); err != nil {
		g.logger.Warn("tracing: flushing spans at shutdown", zap.String("otlp_endpoint", tr.Endpoint()), zap.Error(err))
	}
}

// Config returns the live configuration.
func (g *Gateway) Config() *config.Config { return g.cur.Load().cfg }

func (g *Gateway) newServer(cfg *config.Config) *fasthttp.Server {
	s := cfg.Server
	// Connections are capped by the connLimiter around the listener, which
	// answers with the gateway's JSON 503; fasthttp's own cap (and its
	// text/plain answer) sits above it, with room for connections the
	// limiter already released while their worker is still finishing.
	g.maxConns = s.MaxConnections
	if g.maxConns <= 0 {
		g.maxConns = fasthttp.DefaultConcurrency
	}
	g.maxConnsPerIP = s.MaxConnectionsPerIP
	g.maxBody = int64(s.MaxRequestBodyBytes)
	g.bodyThreshold = int(min(s.StreamRequestBodyThreshold, s.MaxRequestBodyBytes))
	g.streamBodies = s.StreamRequestBodyThreshold < s.MaxRequestBodyBytes
	readTimeout := s.ReadTimeout.D()
	return &fasthttp.Server{
		Handler:               g.Handle,
		ErrorHandler:          g.handleParseError,
		Name:                  "gatewayd",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		// fasthttp's ReadTimeout runs from a new connection's start, and
		// from the first byte of a keep-alive connection's next request,
		// until the body is read: here it bounds the headers only, and
		// HeaderReceived gives the body read_timeout from there on.
		ReadTimeout: s.HeaderTimeout.D(),
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			// A request without a body is read in full: nothing is read
			// from the connection again before the next request's idle
			// deadline replaces the header one, so setting the body's
			// deadline (a clock read and a timer update) would be unused.
			bodiless := h.ContentLength() == 0
			g.checkContentLength(h)
			if bodiless {
				return fasthttp.RequestConfig{}
			}
			return fasthttp.RequestConfig{ReadTimeout: readTimeout}
		},
		ExpectHandler:                 g.handleExpect,
		WriteTimeout:                  s.WriteTimeout.D(),
		IdleTimeout:                   s.IdleTimeout.D(),
		ReadBufferSize:                int(s.MaxRequestHeaderBytes),
		MaxRequestBodySize:            int(s.MaxRequestBodyBytes),
		StreamRequestBody:             g.streamBodies,
		Concurrency:                   2 * g.maxConns,
		DisablePreParseMultipartForm:  true,
		DisableHeaderNamesNormalizing: false,
		CloseOnShutdown:               true,
		// WebSocket tunnels own their connections (see tunnelSet.run).
		KeepHijackedConns:     true,
		SecureErrorLogMessage: true,
		// Handle reads the clock itself and never asks ctx.Time(): the
		// server's own clock read per request would be unused.
		LazyRequestTime: true,
		Logger:          zapPrintf{g.logger.Named("http")},
	}
}

// zapPrintf adapts zap to fasthttp's Logger.
type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) { z.l.Debug(fmt.Sprintf(format, args...)) }

// Listeners are the sockets a Gateway serves on.
type Listeners struct {
	// Client is the client listener (listen): plain TCP, which the Gateway
	// wraps in TLS when the configuration has a tls: section.
	Client net.Listener
	// Admin is the admin listener (admin.listen).
	Admin net.Listener
	// Redirect is the redirect_http listener, nil without it.
	Redirect net.Listener
}

// Serve serves clients on ln and the admin endpoints on adminLn until
// Shutdown. It returns the first serve error.
func (g *Gateway) Serve(ln, adminLn net.Listener) error {
	return g.ServeListeners(Listeners{Client: ln, Admin: adminLn})
}

// ServeListeners serves every listener of ls until Shutdown. It returns the
// first serve error.
func (g *Gateway) ServeListeners(ls Listeners) error {
	errc := make(chan error, 3)
	adminLn := ls.Admin
	if a, ok := adminLn.Addr().(*net.TCPAddr); ok {
		g.adminAddr.Store(a)
	}
	go func() { errc <- g.admin.Serve(adminLn) }()
	trusted := func() *proxy.TrustedProxies { return g.cur.Load().trusted }
	limiter := newConnLimiter(ls.Client, g.maxConns, g.maxConnsPerIP, trusted, g.logger.Named("http"))
	var ln net.Listener = limiter
	if g.tlsListener {
		base := g.tlsBaseConfig()
		// Over-cap connections are answered after the handshake: a TLS
		// client cannot read a plain-text 503.
		limiter.wrapReject = func(c net.Conn) net.Conn { return tls.Server(c, base) }
		ln = &tlsListener{Listener: limiter, config: base}
	}
	port := ""
	if a, ok := ls.Client.Addr().(*net.TCPAddr); ok && a.Port != 443 {
		port = strconv.Itoa(a.Port)
	}
	g.httpsPort.Store(&port)
	go func() { errc <- g.server.Serve(ln) }()
	if ls.Redirect != nil && g.redirect != nil {
		rl := newConnLimiter(ls.Redirect, g.maxConns, g.maxConnsPerIP, trusted, g.logger.Named("redirect"))
		go func() { errc <- g.redirect.Serve(rl) }()
	}
	g.watchMu.Lock()
	g.serving = true
	g.watchMu.Unlock()
	g.syncWatch()
	err := <-errc
	if err != nil && !g.draining.Load() {
		return err
	}
	return nil
}

// Shutdown drains: /readyz turns 503 at once and every response from then
// on carries Connection: close, so keep-alive clients move to new
// connections (elsewhere, once the load balancer noticed) instead of
// sending on one the drain closes; after delay (a pre-stop delay, so load
// balancers notice) the listener stops accepting and in-flight requests
// and open WebSocket tunnels get up to timeout to finish; tunnels still
// open then get a close frame 1001 and are closed; then the live
// generation is closed and upstream connections released. timeout bounds
// the whole, delay included (as server.shutdown_timeout promises): requests
// get what is left of it after the delay (and tunnels a few seconds more
// for their goodbyes).
func (g *Gateway) Shutdown(delay, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	g.draining.Store(true)
	g.stopWatch()
	if delay = min(delay, timeout); delay > 0 {
		g.logger.Info("shutdown: readiness is 503, waiting before closing the listener", zap.Duration("shutdown_delay", delay))
		time.Sleep(delay)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// WebSocket tunnels get the same time as requests, then are closed.
	tunnelsClosed := make(chan int, 1)
	go func() { tunnelsClosed <- g.tunnels.drain(ctx) }()
	var rdone chan struct{}
	if g.redirect != nil {
		rdone = make(chan struct{})
		go func() {
			defer close(rdone)
			_ = g.redirect.ShutdownWithContext(ctx)
		}()
	}
	err := g.server.ShutdownWithContext(ctx)
	if rdone != nil {
		<-rdone
	}
	_ = g.admin.ShutdownWithContext(ctx)
	if n := <-tunnelsClosed; n > 0 {
		g.logger.Info("shutdown: closed websocket tunnels still open after the shutdown timeout", zap.Int("tunnels", n))
	}
	g.retiring.Wait()
	if gen := g.cur.Load(); gen != nil {
		gen.close()
		// The queued spans get what is left of the timeout, and at least
		// a few seconds.
		fd := deadline
		if least := time.Now().Add(3 * time.Second); least.After(fd) {
			fd = least
		}
		fctx, fcancel := context.WithDeadline(context.Background(), fd)
		g.shutdownTracer(fctx, gen.tracer)
		fcancel()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: in-flight requests still running after the shutdown timeout: %w", err)
	}
	return err
}

// ReloadResult summarises a successful reload.
type ReloadResult struct {
	Unchanged bool
	Added     []string
	Removed   []string
	Changed   []string
	Plugins   []string // named plugin instances whose settings changed
	// Upstreams are the upstreams added, removed or changed: settings or
	// the content of their TLS files changed (a change of weights, balance
	// or retry settings alone keeps the connections and health state).
	Upstreams []string
	// Tracing says the tracing: section changed (and took effect).
	Tracing  bool
	Restart  []string // fields that need a restart to take effect
	Warnings []string // configuration warnings of the new configuration
}

// String renders the summary for logs and the admin endpoint.
func (r ReloadResult) String() string {
	if r.Unchanged {
		return "configuration unchanged"
	}
	var parts []string
	add := func(label string, xs []string) {
		if len(xs) > 0 {
			parts = append(parts, label+" "+strings.Join(xs, ","))
		}
	}
	add("routes added:", r.Added)
	add("routes removed:", r.Removed)
	add("routes changed:", r.Changed)
	add("plugins changed:", r.Plugins)
	add("upstreams changed:", r.Upstreams)
	if r.Tracing {
		parts = append(parts, "tracing changed")
	}
	if len(parts) == 0 {
		parts = append(parts, "no route changes")
	}
	if len(r.Restart) > 0 {
		parts = append(parts, "restart needed for: "+strings.Join(r.Restart, ","))
	}
	return strings.Join(parts, "; ")
}

// Reload reads the configuration file again and, when it changed and
// builds cleanly, swaps it in. On any error the old configuration keeps
// serving and every error is returned. SIGHUP, POST /-/reload and the
// watcher (watch: true) all reload through here; afterwards the watcher is
// started, stopped or pointed at the live files as the outcome requires.
func (g *Gateway) Reload() (ReloadResult, error) {
	// Deferred first, so it runs after reloadMu is released.
	defer g.syncWatch()
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.cur.Load()
	path := old.cfg.File
	if path == configs.DefaultName {
		return g.reloadFailed(errors.New("the embedded default configuration cannot be reloaded: start gatewayd with -config FILE to reload that file"))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return g.reloadFailed(fmt.Errorf("%s: %w", path, err))
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		if cfg != nil {
			// Report the plugins' errors too, as -check does.
			if gen, berr := build(cfg, g.deps); berr != nil {
				err = config.Merge(err, berr)
			} else {
				gen.close()
			}
		}
		return g.reloadFailed(err)
	}
	if cfg.Hash == old.cfg.Hash && !old.filesChanged() && (old.tls == nil || cfg.TLS == nil || !old.tls.filesChanged(cfg.TLS)) {
		return ReloadResult{Unchanged: true}, nil
	}
	res := diff(old, cfg)
	if (cfg.Auth == nil) != (g.deps.auth == nil) || (cfg.Auth != nil && !sameYAML(cfg.Auth.Meta.Node, old.cfg.Auth.Meta.Node)) {
		res.Restart = append(res.Restart, "auth")
	}
	gen, err := build(cfg, g.deps)
	if err != nil {
		return g.reloadFailed(err)
	}
	// Tracing settings apply on reload: unchanged, the tracer (and its
	// queue of spans) carries over; changed, a new one takes the new
	// requests and the old one is flushed once its last request ended.
	gen.tracer = old.tracer
	if !sameYAML(cfg.Tracing, old.cfg.Tracing) {
		if gen.tracer, err = g.newTracer(cfg.Tracing); err != nil {
			gen.close()
			return g.reloadFailed(err)
		}
		if cfg.Tracing == nil {
			g.logger.Info("tracing off")
		}
		res.Tracing = true
	}
	for _, w := range gen.warnings {
		res.Warnings = append(res.Warnings, w.String())
	}
	// Settings that belong to listeners and the store are kept as they are.
	gen.cfg.Listen, gen.cfg.Admin.Listen, gen.cfg.RedirectHTTP = old.cfg.Listen, old.cfg.Admin.Listen, old.cfg.RedirectHTTP
	if g.tlsListener && gen.tls == nil {
		// tls: was removed: the TLS listener keeps its certificates
		// until the restart that makes it plain.
		gen.tls, gen.forwardCert = old.tls, old.forwardCert
		if old.forwardCert != nil {
			gen.identity = proxy.NewIdentityHeaders(append(gen.identity.Names(), string(old.forwardCert)))
		}
	}
	g.cur.Store(gen)
	g.trackGeneration(gen)
	if g.tlsListener {
		metrics.SetTLSCertificates(gen.tls.certs.infos)
	}
	g.accessLog.Store(*cfg.Log.AccessLog)
	applyRuntime(cfg.Runtime)
	var oldTracer *tracing.Tracer
	if old.tracer != gen.tracer {
		oldTracer = old.tracer
	}
	g.retire(old, oldTracer)
	metrics.ConfigReloads("success").Inc()
	metrics.SetLastReloadSuccess(time.Now())
	return res, nil
}

func (g *Gateway) reloadFailed(err error) (ReloadResult, error) {
	// A failed build may have created series for names not in service.
	g.pruneMetrics()
	metrics.ConfigReloads("failure").Inc()
	return ReloadResult{}, err
}

// retire waits, in the background, for the old generation's last request
// and then closes it, and flushes and stops tracer (nil: none) if set, the
// old generation's tracer that the new one does not share.
func (g *Gateway) retire(old *generation, tracer *tracing.Tracer) {
	old.retired.Store(true)
	if old.inflight.Load() == 0 {
		old.signalIdle()
	}
	g.retiring.Add(1)
	go func() {
		defer g.retiring.Done()
		<-old.idle
		old.close()
		g.closed(old)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		g.shutdownTracer(ctx, tracer)
		cancel()
	}()
}

func diff(old *generation, cfg *config.Config) ReloadResult {
	var res ReloadResult
	oldRoutes := map[string]*route{}
	for _, r := range old.routes {
		oldRoutes[r.name] = r
	}
	newNames := map[string]bool{}
	for _, rc := range cfg.Routes {
		if rc == nil {
			continue
		}
		newNames[rc.Name] = true
		or, ok := oldRoutes[rc.Name]
		switch {
		case !ok:
			res.Added = append(res.Added, rc.Name)
		case or.signature != routeSignature(rc, nil):
			res.Changed = append(res.Changed, rc.Name)
		}
	}
	for name := range oldRoutes {
		if !newNames[name] {
			res.Removed = append(res.Removed, name)
		}
	}
	for name, n := range cfg.Plugins {
		if on, ok := old.cfg.Plugins[name]; !ok || !sameYAML(on, n) {
			res.Plugins = append(res.Plugins, name)
		}
	}
	for name := range old.cfg.Plugins {
		if _, ok := cfg.Plugins[name]; !ok {
			res.Plugins = append(res.Plugins, name)
		}
	}
	for name, u := range cfg.Upstreams {
		if ou, ok := old.cfg.Upstreams[name]; !ok || ou == nil || u == nil || proxyConfig(name, u).Key() != proxyConfig(name, ou).Key() {
			res.Upstreams = append(res.Upstreams, name)
		}
	}
	for name := range old.cfg.Upstreams {
		if _, ok := cfg.Upstreams[name]; !ok {
			res.Upstreams = append(res.Upstreams, name)
		}
	}
	if cfg.Listen != old.cfg.Listen {
		res.Restart = append(res.Restart, "listen")
	}
	if cfg.Admin.Listen != old.cfg.Admin.Listen {
		res.Restart = append(res.Restart, "admin.listen")
	}
	// The listener's protocol is fixed at start; the tls: settings
	// themselves (certificates, client certificates, versions) apply live.
	if (cfg.TLS == nil) != (old.cfg.TLS == nil) {
		res.Restart = append(res.Restart, "tls")
	}
	if cfg.RedirectHTTP != old.cfg.RedirectHTTP {
		res.Restart = append(res.Restart, "redirect_http")
	}
	if (cfg.Redis == nil) != (old.cfg.Redis == nil) || (cfg.Redis != nil && !sameYAML(cfg.Redis.Meta.Node, old.cfg.Redis.Meta.Node)) {
		res.Restart = append(res.Restart, "redis")
	}
	// trusted_proxies and drop_underscore_headers are part of the
	// generation and apply live; the listener's timeouts and limits do not.
	ns, ps := cfg.Server, old.cfg.Server
	for _, s := range []*config.Server{&ns, &ps} {
		// Read per generation or at shutdown: these apply live.
		s.TrustedProxies, s.ShutdownTimeout, s.ShutdownDelay, s.Meta = nil, 0, 0, config.Meta{}
		s.DropUnderscoreHeaders = false
	}
	if !sameYAML(ns, ps) {
		res.Restart = append(res.Restart, "server")
	}
	if cfg.Log.Level != old.cfg.Log.Level || cfg.Log.Format != old.cfg.Log.Format {
		res.Restart = append(res.Restart, "log.level/log.format")
	}
	sort.Strings(res.Added)
	sort.Strings(res.Removed)
	sort.Strings(res.Changed)
	sort.Strings(res.Plugins)
	sort.Strings(res.Upstreams)
	return res
}

func sameYAML(a, b any) bool {
	return bytes.Equal(marshal(a), marshal(b))
}

// checkContentLength runs when a request's headers are in, before fasthttp
// reads any of its body. A streamed body (StreamRequestBody) would
// otherwise be partly read before the handler runs, so a Content-Length
// over max_request_body_bytes is noted here, and the body length set to 0
// so that nothing is read: Handle answers 413 and closes the connection.
// The note is keyed by the header's address, which is the request's and
// stays the same for its RequestCtx: nothing the client sends can set it.
func (g *Gateway) checkContentLength(h *fasthttp.RequestHeader) {
	if !g.streamBodies {
		return
	}
	if int64(h.ContentLength()) > g.maxBody {
		if _, loaded := g.oversized.LoadOrStore(h, struct{}{}); !loaded {
			g.oversizedN.Add(1)
		}
		h.SetContentLength(0)
		return
	}
	// A note left by a request that never reached the handler (a parse
	// error after the headers) must not stick to the next one.
	if g.oversizedN.Load() > 0 {
		g.takeOversized(h)
	}
}

// takeOversized reports, and forgets, whether h was noted as over the body
// limit by checkContentLength.
func (g *Gateway) takeOversized(h *fasthttp.RequestHeader) bool {
	if g.oversizedN.Load() == 0 {
		return false
	}
	if _, ok := g.oversized.LoadAndDelete(h); ok {
		g.oversizedN.Add(-1)
		return true
	}
	return false
}

// handleExpect answers "Expect: 100-continue" requests whose body is over
// the limit with 413 at once, instead of inviting the client to send it.
func (g *Gateway) handleExpect(ctx *fasthttp.RequestCtx) int {
	if !g.takeOversized(&ctx.Request.Header) && int64(ctx.Request.Header.ContentLength()) <= g.maxBody {
		return fasthttp.StatusContinue
	}
	st := reqctx.Acquire(ctx)
	st.RequestID = appendUUID(st.RequestID[:0])
	st.Route = UnmatchedRoute
	gen := g.cur.Load()
	rt := acquireTrace()
	defer rt.release()
	rt.protocol = protocolOf(&ctx.Request.Header, false)
	rt.begin(ctx, gen.tracer, time.Now())
	writeBodyTooLarge(ctx)
	gen.unmatched.Observe(metrics.MethodIndex(ctx.Method()), fasthttp.StatusRequestEntityTooLarge, 0)
	observeResponseSize(ctx, gen.unmatched)
	rt.end(ctx, st, fasthttp.StatusRequestEntityTooLarge)
	if g.accessLog.Load() {
		g.logAccess(ctx, st, rt, gen.accessQuery, fasthttp.StatusRequestEntityTooLarge, 0)
	}
	return fasthttp.StatusRequestEntityTooLarge
}
