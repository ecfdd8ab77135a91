package gateway

import (
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/valyala/fasthttp"
)

// observeResponse records the request in m: http_requests_total and
// http_request_duration_seconds through Observe by the caller, and here
// http_response_size_bytes. The size is the body the client gets: none
// for HEAD and for 1xx, 204 and 304 answers, the buffered body's length,
// or, for a body streamed from the upstream, the bytes the server wrote
// once the stream ends (a stream of another origin counts its
// Content-Length).
func observeResponseSize(ctx *fasthttp.RequestCtx, m *metrics.Route) {
	resp := &ctx.Response
	status := resp.StatusCode()
	switch {
	case ctx.IsHead() || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified:
		m.ObserveResponseSize(0)
	case !resp.IsBodyStream():
		m.ObserveResponseSize(int64(len(resp.Body())))
	case proxy.ObserveBodySize(resp, m):
		// Counted when the server closes the stream.
	default:
		m.ObserveResponseSize(int64(max(resp.Header.ContentLength(), 0)))
	}
}

// trackGeneration notes gen as open (serving or retiring): the metrics of
// its routes and upstreams are kept. The caller holds reloadMu.
func (g *Gateway) trackGeneration(gen *generation) {
	if g.open == nil {
		g.open = map[*generation]struct{}{}
	}
	g.open[gen] = struct{}{}
}

// closed forgets a closed generation and prunes the series of routes and
// upstreams no open generation has.
func (g *Gateway) closed(gen *generation) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	delete(g.open, gen)
	g.pruneMetrics()
}

// pruneMetrics removes the series of routes and upstreams no open
// generation uses (metrics.Prune): a route or upstream removed by a reload
// stops being exported once the last request that used it finished. The
// caller holds reloadMu, so no build (which creates series) runs meanwhile.
func (g *Gateway) pruneMetrics() {
	live := metrics.Live{Routes: []string{UnmatchedRoute}}
	for gen := range g.open {
		for _, r := range gen.routes {
			live.Routes = append(live.Routes, r.name)
		}
		for name := range gen.cfg.Upstreams {
			live.Upstreams = append(live.Upstreams, name)
		}
		for name, up := range gen.upstreams {
			for _, t := range up.TargetURLs() {
				live.Targets = append(live.Targets, [2]string{name, t})
			}
		}
	}
	metrics.Prune(live)
}
