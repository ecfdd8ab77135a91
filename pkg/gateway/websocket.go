package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// upgrade forwards a WebSocket handshake the route's plugins accepted. A
// 101 answer is written to the client by the hijack handler, which then
// tunnels the connection; any other answer is proxied as a normal
// response. The handshake is a request like any other for the generation
// (it counts as in flight until Handle returns); the tunnel is not, so a
// reload never waits for tunnels.
//
// It returns the pending tunnel after a 101, whose header block Handle
// copies once the plugins' response hooks have run.
func (g *Gateway) upgrade(ctx *fasthttp.RequestCtx, r *route, st *reqctx.State, rt *reqTrace) *tunnelInfo {
	setUpstreamPath(ctx, r, st)
	proxy.PrepareUpgrade(&ctx.Request)
	ctx.Request.UseHostHeader = r.preserveHost
	t0 := time.Now()
	up, err := r.upstream.UpgradeObserved(&ctx.Request, &ctx.Response, r.timeout, rt)
	rt.upstreamDur = time.Since(t0)
	r.upDuration.Update(rt.upstreamDur.Seconds())
	if err != nil {
		g.upstreamFailed(ctx, r, st, rt, err)
		return nil
	}
	if up == nil {
		proxy.CleanResponse(&ctx.Response)
		return nil
	}
	proxy.CleanUpgradeResponse(&ctx.Response)
	t := &tunnelInfo{
		route:     r.name,
		upstream:  r.upstreamName,
		requestID: string(st.RequestID),
		userID:    string(st.Identity.Subject),
		clientIP:  string(st.ClientIP),
		host:      string(rt.host),
		userAgent: string(ctx.Request.Header.UserAgent()),
		traceID:   string(rt.traceID()),
		target:    rt.upstreamAddr,
		idle:      r.wsIdle,
		open:      r.wsOpen,
		opened:    r.wsOpened,
	}
	// The hijack handler writes the 101 itself (HijackSetNoResponse), so
	// it always runs and always owns up, even when the server is shutting
	// down; the header block is copied into t.head by Handle, since ctx is
	// not the handler's.
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) { g.tunnels.run(g, c, up, t) })
	return t
}

// tunnelInfo is what a tunnel keeps of its handshake, for its metrics and
// its log line: copies, so that a tunnel holds nothing of the request or
// of the generation it was opened on.
type tunnelInfo struct {
	route, upstream             string
	requestID, userID, clientIP string
	host, userAgent, traceID    string
	// target is the upstream address the tunnel goes to.
	target string
	idle   time.Duration
	open   *vm.Gauge
	opened *vm.Counter
	// head is the 101 response header block, as the client gets it.
	head []byte
}

// tunnelSet tracks the open tunnels so shutdown can wait for them and then
// close the rest.
type tunnelSet struct {
	mu     sync.Mutex
	open   map[*proxy.Tunnel]struct{}
	closed bool // after shutdown's deadline: new tunnels close at once
	wg     sync.WaitGroup
	empty  chan struct{} // closed and replaced when the set becomes empty
}

// add registers tn; false means the gateway no longer takes tunnels.
func (s *tunnelSet) add(tn *proxy.Tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.open == nil {
		s.open = map[*proxy.Tunnel]struct{}{}
	}
	s.open[tn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *tunnelSet) remove(tn *proxy.Tunnel) {
	s.mu.Lock()
	delete(s.open, tn)
	if len(s.open) == 0 && s.empty != nil {
		close(s.empty)
		s.empty = nil
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Len returns the number of open tunnels.
func (s *tunnelSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// drain waits until every tunnel has ended or ctx is done, then shuts
// down those left (a close frame 1001 to the client where the stream
// allows, then both TCP connections; see proxy.Tunnel.Shutdown) and waits
// for their goroutines. No tunnel opens afterwards. It returns how many
// were shut down.
func (s *tunnelSet) drain(ctx context.Context) int {
	s.mu.Lock()
	var empty chan struct{}
	if len(s.open) > 0 {
		if s.empty == nil {
			s.empty = make(chan struct{})
		}
		empty = s.empty
	}
	s.mu.Unlock()
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
		}
	}
	s.mu.Lock()
	s.closed = true
	n := len(s.open)
	for tn := range s.open {
		tn.Shutdown()
	}
	s.mu.Unlock()
	// Shutdown bounds each goodbye to about two seconds; whatever is left
	// after that is cut.
	waited := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(3 * time.Second):
		s.mu.Lock()
		for tn := range s.open {
			tn.Close()
		}
		s.mu.Unlock()
		<-waited
	}
	return n
}

// run is the hijack handler of a switched connection: it writes the 101
// and starts the tunnel on a goroutine of its own, so fasthttp releases the
// request context and read buffer at once (the server keeps hijacked
// connections open: KeepHijackedConns) and an idle tunnel holds little
// more than its two sockets and goroutines.
func (s *tunnelSet) run(g *Gateway, c net.Conn, up *proxy.Upgraded, info *tunnelInfo) {
	if err := writeHead(c, info.head); err != nil {
		_ = up.Close()
		_ = c.Close()
		return
	}
	tn, err := proxy.NewTunnel(c, up, info.idle)
	if err != nil {
		_ = up.Close()
		_ = c.Close()
		return
	}
	if !s.add(tn) {
		tn.Close()
		_ = tn.Run()
		return
	}
	info.open.Inc()
	info.opened.Inc()
	go func() {
		start := time.Now()
		err := tn.Run()
		info.open.Dec()
		if g.accessLog.Load() {
			g.logTunnel(info, tn, start, err)
		}
		s.remove(tn)
	}()
}

// writeHead writes the 101 header block to the client.
func writeHead(c net.Conn, head []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(c, len(head))
	if _, err := bw.Write(head); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return c.SetWriteDeadline(time.Time{})
}

// Tunnel end reasons in the access log.
const (
	endClosed   = "closed"
	endIdle     = "idle_timeout"
	endShutdown = "shutdown"
	endError    = "error"
)

// logTunnel writes the access line of a tunnel that ended: the handshake
// had its own line, with status 101, when it was answered.
func (g *Gateway) logTunnel(info *tunnelInfo, tn *proxy.Tunnel, start time.Time, err error) {
	in, out := tn.Bytes()
	end := endClosed
	switch {
	case err == nil:
	case errors.Is(err, proxy.ErrTunnelIdle):
		end = endIdle
	case errors.Is(err, proxy.ErrTunnelClosed):
		end = endShutdown
	default:
		end = endError
	}
	fields := []zap.Field{
		zap.String("protocol", "ws"),
		zap.String("request_id", info.requestID),
		zap.String("route", info.route),
		zap.String("upstream", info.upstream),
		zap.String("user_id", info.userID),
		zap.String("client_ip", info.clientIP),
		zap.String("host", info.host),
		zap.String("user_agent", info.userAgent),
		zap.String("upstream_addr", info.target),
		zap.String("trace_id", info.traceID),
		zap.Duration("duration", time.Since(start)),
		zap.Int64("bytes_in", in),
		zap.Int64("bytes_out", out),
		zap.String("end", end),
	}
	if end == endError {
		fields = append(fields, zap.Error(err))
	}
	g.access.Info("websocket tunnel closed", fields...)
}
