package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

func marshal(v any) []byte {
	out, _ := yaml.Marshal(v)
	return out
}

// handleAdmin serves /metrics, /healthz, /readyz, POST /-/reload and, with
// admin.pprof: true, /debug/pprof/.
func (g *Gateway) handleAdmin(ctx *fasthttp.RequestCtx) {
	// Error bodies carry a request id here too.
	st := reqctx.Acquire(ctx)
	st.RequestID = appendUUID(st.RequestID[:0])
	if g.draining.Load() {
		ctx.SetConnectionClose()
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		if msg := g.crossSite(ctx); msg != "" {
			apierror.Write(ctx, fasthttp.StatusForbidden, apierror.CodeForbidden, msg)
			return
		}
	}
	if g.cur.Load().cfg.Admin.Pprof && bytes.HasPrefix(ctx.Path(), pprofPrefix) {
		servePprof(ctx)
		return
	}
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		metrics.WritePrometheus(ctx)
	case "/healthz":
		writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
	case "/readyz":
		g.readyz(ctx)
	case "/-/reload":
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			apierror.Write(ctx, fasthttp.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed, "use POST to reload")
			return
		}
		res, err := g.Reload()
		g.LogReload("admin", res, err)
		if err != nil {
			msgs := []string{}
			for _, e := range config.Errors(err) {
				msgs = append(msgs, e.Error())
			}
			// The shape of every error body (request_id included), plus
			// the configuration errors.
			writeJSON(ctx, fasthttp.StatusBadRequest, map[string]any{
				"error": apierror.CodeBadRequest, "message": "configuration rejected; the previous configuration keeps serving",
				"request_id": string(st.RequestID), "errors": msgs})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{"status": "reloaded", "summary": res.String(),
			"unchanged": res.Unchanged, "routes_added": nonNil(res.Added), "routes_removed": nonNil(res.Removed),
			"routes_changed": nonNil(res.Changed), "plugins_changed": nonNil(res.Plugins), "upstreams_changed": nonNil(res.Upstreams),
			"tracing_changed": res.Tracing,
			"restart_needed":  nonNil(res.Restart), "warnings": nonNil(res.Warnings)})
	default:
		apierror.Write(ctx, fasthttp.StatusNotFound, apierror.CodeNotFound, "unknown admin endpoint")
	}
}

// readyz answers 503 while draining and, when the live generation needs
// the store (a fail-closed plugin or admin.readiness_requires_store), while
// the store does not answer a ping; 200 otherwise.
func (g *Gateway) readyz(ctx *fasthttp.RequestCtx) {
	if g.draining.Load() {
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if g.opts.Store != nil && g.cur.Load().needsStore {
		c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := g.opts.Store.Ping(c)
		cancel()
		if err != nil {
			metrics.StoreErrors("ping").Inc()
			writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
			return
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready"})
}

// LogReload logs the outcome of a reload triggered by source.
func (g *Gateway) LogReload(source string, res ReloadResult, err error) {
	if err != nil {
		errs := config.Errors(err)
		for _, e := range errs {
			g.logger.Error("reload rejected: "+e.Error(), zap.String("source", source))
		}
		g.logger.Error("reload failed; the previous configuration keeps serving", zap.String("source", source), zap.Int("errors", len(errs)))
		return
	}
	if res.Unchanged {
		g.logger.Info("reload: configuration file unchanged", zap.String("source", source))
		return
	}
	g.logger.Info("configuration reloaded", zap.String("source", source), zap.String("summary", res.String()),
		zap.Strings("routes_added", res.Added), zap.Strings("routes_removed", res.Removed),
		zap.Strings("routes_changed", res.Changed), zap.Strings("plugins_changed", res.Plugins))
	if len(res.Restart) > 0 {
		g.logger.Warn("reload: these settings changed but only take effect after a restart", zap.Strings("fields", res.Restart))
	}
	for _, w := range res.Warnings {
		g.logger.Warn("configuration warning: "+w, zap.String("source", source))
	}
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	out, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(out, '\n'))
}

// handleParseError answers requests fasthttp could not parse: oversized
// headers (431) or bodies (413), requests not received within
// header_timeout or read_timeout (408), smuggling attempts and other
// malformed requests (400). The connection is closed afterwards.
func (g *Gateway) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	st := reqctx.Acquire(ctx)
	st.RequestID = appendUUID(st.RequestID[:0])
	st.Route = UnmatchedRoute
	gen := g.cur.Load()
	rt := acquireTrace()
	defer rt.release()
	rt.protocol = protocolOf(&ctx.Request.Header, false)
	rt.begin(ctx, gen.tracer, time.Now())
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		apierror.Write(ctx, fasthttp.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "request body is larger than the gateway accepts")
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		apierror.Write(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, apierror.CodeHeaderTooLarge, "request headers are larger than the gateway accepts")
	case isTimeout(err):
		apierror.Write(ctx, fasthttp.StatusRequestTimeout, apierror.CodeRequestTimeout, "the request was not received in time")
	default:
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, "malformed HTTP request")
	}
	ctx.SetConnectionClose()
	status := ctx.Response.StatusCode()
	gen.unmatched.Observe(metrics.MethodIndex(ctx.Method()), status, 0)
	observeResponseSize(ctx, gen.unmatched)
	rt.end(ctx, st, status)
	if g.accessLog.Load() {
		g.logAccess(ctx, st, rt, gen.accessQuery, status, 0)
	}
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// crossSite explains why a state-changing admin request may have been sent
// by a browser on behalf of another site, or "" when it cannot have been.
// The admin listener has no authentication, so a page the operator visits
// could otherwise POST /-/reload to it: directly (a cross-site form or
// fetch, which browsers mark with Origin) or through DNS rebinding (a name
// of the attacker's that resolves to the listener, which the Host header
// still names). Command-line clients (curl, scripts, systemctl reload) send
// neither and address the listener by its own address or localhost.
func (g *Gateway) crossSite(ctx *fasthttp.RequestCtx) string {
	if ctx.Request.Header.Peek(fasthttp.HeaderOrigin) != nil {
		return "state-changing admin requests must not carry an Origin header"
	}
	if !g.adminHostAllowed(string(ctx.Host())) {
		return "state-changing admin requests must address the admin listener by its own address or localhost"
	}
	return ""
}

// adminHostAllowed reports whether host (a Host header value) names the
// admin listener: localhost, a loopback address or the listener's own
// address (any address of this machine when it listens on all of them),
// with the listener's port. Names other than localhost are refused: only
// a name can be rebound to this machine by someone else's DNS.
func (g *Gateway) adminHostAllowed(host string) bool {
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		// No port: the default one.
		name, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "80"
	}
	la := g.adminAddr.Load()
	tcp := la != nil
	if tcp && port != strconv.Itoa(la.Port) {
		return false
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	switch {
	case ip == nil:
		return false
	case ip.IsLoopback():
		return true
	case !tcp:
		return false
	case la.IP.Equal(ip):
		return true
	case la.IP.IsUnspecified():
		return localAddress(ip)
	}
	return false
}

// localAddress reports whether ip is assigned to one of this machine's
// interfaces.
func localAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
