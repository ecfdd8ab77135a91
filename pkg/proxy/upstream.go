// Package proxy is the upstream side of the gateway: one fasthttp.HostClient
// per target, load balancing, retries, passive ejection and active health
// checks (Upstream), and the header hygiene applied to every proxied request
// and response (PrepareRequest, CleanResponse).
//
// Target selection. A request goes to a target that passes its active health
// checks and is not ejected. When every target that is not ejected fails its
// health checks, the request still goes to one of them: the upstream fails
// open, because a broken or misconfigured health endpoint must not turn every
// request into a 503 while the targets may well serve traffic. Passive
// ejection is different: it is based on real connection failures, so when
// every target is ejected Do fails fast with ErrUnavailable until the first
// ejection ends. An ejected target is tried again after Config.EjectFor; a
// single further connect failure ejects it again, a successful connect (or a
// passing active check) clears it.
//
// Response bodies. A response with a Content-Length up to 64 KiB is read
// whole and the upstream connection goes back to the pool at once. Larger
// bodies, and bodies without a length that do not end within 64 KiB, are
// streamed: resp gets a body stream that the fasthttp server copies to the
// client, and the upstream connection is released when that stream is closed
// (the server does this after writing the response; ResetBody, Reset and
// ReleaseResponse do it too).
package proxy

import (
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/gatewayd/gatewayd/pkg/metrics"
)

// Upstream sends requests to the targets of one configured upstream. It is
// safe for concurrent use.
type Upstream struct {
	name      string
	key       string
	targets   []*target
	leastConn bool
	rr        atomic.Uint32

	timeout    time.Duration
	retries    int
	maxBody    int
	ejectAfter int32
	ejectFor   int64 // nanoseconds

	ejections *vm.Counter
	logger    *zap.Logger

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// target is one backend address of an upstream with its connection pool and
// health state.
type target struct {
	targetAddr
	bit    uint64 // 1 << the target's index, for the tried set of a request
	scheme []byte
	host   []byte

	hc *fasthttp.HostClient

	connectTimeout time.Duration
	tlsConfig      *tls.Config

	inflight     atomic.Int64
	failures     atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds, 0 when not ejected
	healthy      atomic.Bool  // active health check verdict, true without checks
	gauge        *vm.Gauge
}

// New validates cfg, applies its defaults and builds the upstream. Active
// health checks, if configured, start at once and run until Close. A nil
// logger discards log output.
func New(cfg Config, logger *zap.Logger) (*Upstream, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, errors.Join(errors.New("proxy: upstream "+cfg.Name+": invalid configuration"), err)
	}
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		tlsConfig, _ = cfg.TLS.build() // validated above
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	u := &Upstream{
		name:       cfg.Name,
		key:        cfg.Key(),
		leastConn:  cfg.Balance == BalanceLeastConn,
		timeout:    cfg.Timeout,
		retries:    cfg.Retries,
		maxBody:    cfg.MaxResponseBodySize,
		ejectAfter: int32(min(cfg.EjectAfter, 1<<30)),
		ejectFor:   int64(cfg.EjectFor),
		ejections:  metrics.UpstreamEjections(cfg.Name),
		logger:     logger.With(zap.String("upstream", cfg.Name)),
		stop:       make(chan struct{}),
	}
	for i, raw := range cfg.Targets {
		ta, _ := parseTarget(raw) // validated above
		t := &target{
			targetAddr:     ta,
			bit:            1 << uint(i),
			scheme:         []byte(ta.scheme),
			host:           []byte(ta.host),
			connectTimeout: cfg.ConnectTimeout,
			gauge:          metrics.UpstreamTargetHealthy(cfg.Name, ta.url),
		}
		if ta.isTLS {
			t.tlsConfig = clientTLSConfig(tlsConfig, ta.name)
		}
		t.healthy.Store(true)
		t.gauge.Set(1)
		t.hc = &fasthttp.HostClient{
			Addr:                ta.addr,
			IsTLS:               ta.isTLS,
			DialTimeout:         u.dialFunc(t),
			MaxConns:            cfg.MaxConnsPerTarget,
			MaxIdleConnDuration: fasthttp.DefaultMaxIdleConnDuration,
			ReadBufferSize:      readBufferSize,
			// The most recently used connection first: the least likely to
			// have been closed by the upstream while idle.
			ConnPoolStrategy: fasthttp.LIFO,
			// Do runs its own exchange on this pool and enforces timeouts,
			// the body limit and retries itself; these fields keep any
			// direct HostClient use consistent with the configuration.
			ReadTimeout:                   cfg.Timeout,
			WriteTimeout:                  cfg.Timeout,
			MaxResponseBodySize:           cfg.MaxResponseBodySize,
			MaxIdemponentCallAttempts:     1,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: false,
			DisablePathNormalizing:        true,
		}
		u.targets = append(u.targets, t)
	}
	if hc := cfg.HealthCheck; hc != nil {
		for _, t := range u.targets {
			c := newHealthChecker(u, t, *hc)
			u.wg.Add(1)
			go c.run()
		}
	}
	return u, nil
}

// Name returns the upstream name.
func (u *Upstream) Name() string { return u.name }

// Key returns the canonical settings string of the configuration the upstream
// was built from (see Config.Key).
func (u *Upstream) Key() string { return u.key }

// Close stops the health checkers and closes idle connections. Requests still
// in flight finish on their connections. Close is idempotent.
func (u *Upstream) Close() error {
	u.closeOnce.Do(func() {
		close(u.stop)
		u.wg.Wait()
		for _, t := range u.targets {
			t.hc.CloseIdleConnections()
		}
	})
	return nil
}

// Do sends req to a target and reads the answer into resp, replacing
// whatever resp held (headers the gateway wants on the response must be set
// after Do). timeout bounds the whole exchange; 0 means the upstream's
// configured Timeout.
//
// Do points the request URI at the chosen target (scheme and host), so the
// Host header becomes the target's host unless req.UseHostHeader is set, in
// which case the request's Host header is kept (preserve_host). The path is
// sent exactly as set on req.URI(); it is not normalised again.
//
// Idempotent requests without a body stream are retried on another target,
// up to Config.Retries times, when no connection could be had (connect
// failure, or every connection slot busy); a request is never sent to another
// target once its bytes went out. One exception, as in net/http: when a
// reused keep-alive connection turns out to have been closed by the upstream
// (closed before the first response byte), an idempotent request is sent
// again on a fresh connection to the same target, at most three times. A POST
// never is; instead, connections idle for a second or more are checked for a
// close before reuse. On failure resp is reset and the error wraps
// ErrTimeout, ErrUnavailable or ErrBadGateway (see Classify).
//
// resp may come back with a body stream (see the package documentation); it
// must be written or reset so the upstream connection is released.
func (u *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	return u.DoObserved(req, resp, timeout, nil)
}

// DoObserved is Do, telling obs (when not nil) about each attempt.
func (u *Upstream) DoObserved(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, obs AttemptObserver) error {
	if timeout <= 0 {
		timeout = u.timeout
	}
	deadline := time.Now().Add(timeout)
	canRetry := u.retries > 0 && isIdempotent(&req.Header) && !req.IsBodyStream()
	var (
		tried   uint64
		last    *target
		lastErr error
	)
	for attempt := 0; ; attempt++ {
		t := u.pick(tried)
		if t == nil {
			resp.Reset()
			if lastErr != nil {
				return u.failure(last, lastErr, deadline)
			}
			return &UpstreamError{Upstream: u.name, Kind: ErrUnavailable}
		}
		tried |= t.bit
		if u.leastConn {
			t.inflight.Add(1)
		}
		if obs != nil {
			obs.AttemptStart(req, u.attempt(t, attempt, ""))
		}
		err := hostConns.exchange(u, t, req, resp, deadline)
		if u.leastConn {
			t.inflight.Add(-1)
		}
		if obs != nil {
			obs.AttemptEnd(resp, err)
		}
		if err == nil {
			return nil
		}
		last, lastErr = t, err
		if !canRetry || attempt >= u.retries || !retryable(err) || !time.Now().Before(deadline) {
			resp.Reset()
			return u.failure(t, err, deadline)
		}
	}
}

// retryable reports whether err left the request unsent, so that another
// target may take it.
func retryable(err error) bool {
	return isConnectError(err) || errors.Is(err, fasthttp.ErrNoFreeConns)
}

// failure wraps err in an UpstreamError of the right kind.
func (u *Upstream) failure(t *target, err error, deadline time.Time) error {
	e := &UpstreamError{Upstream: u.name, Err: err}
	if t != nil {
		e.Target = t.url
	}
	switch {
	case isTimeout(err) || !time.Now().Before(deadline):
		e.Kind = ErrTimeout
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrBadGateway
	}
	return e
}

// isIdempotent reports whether a request with this method may be sent again
// to another target after a connect failure.
func isIdempotent(h *fasthttp.RequestHeader) bool {
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

// Selection levels, from most to least preferred.
const (
	pickHealthy  = iota // healthy, not ejected, not tried by this request
	pickFailOpen        // not ejected, not tried: every untried target fails its checks
	pickAgain           // not ejected, possibly tried already
)

// pick chooses the target for the next attempt, or nil when every target is
// ejected. tried has bit i set for targets this request already tried.
func (u *Upstream) pick(tried uint64) *target {
	start := u.rr.Add(1) - 1
	var now int64
	for level := pickHealthy; level <= pickAgain; level++ {
		if t := u.scan(start, tried, level, &now); t != nil {
			return t
		}
	}
	return nil
}

// scan returns the target chosen by the balancing strategy among those that
// qualify at level, starting the rotation at start.
func (u *Upstream) scan(start uint32, tried uint64, level int, now *int64) *target {
	n := uint32(len(u.targets))
	var (
		best     *target
		bestLoad int64
	)
	for i := range n {
		t := u.targets[(start+i)%n]
		if level < pickAgain && tried&t.bit != 0 {
			continue
		}
		if level == pickHealthy && !t.healthy.Load() {
			continue
		}
		if u.ejected(t, now) {
			continue
		}
		if !u.leastConn {
			return t
		}
		if load := t.inflight.Load(); best == nil || load < bestLoad {
			best, bestLoad = t, load
		}
	}
	return best
}

// ejected reports whether t is currently ejected, lifting an ejection whose
// time is up. now caches the current time across one pick.
func (u *Upstream) ejected(t *target, now *int64) bool {
	until := t.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if *now == 0 {
		*now = time.Now().UnixNano()
	}
	if *now < until {
		return true
	}
	if t.ejectedUntil.CompareAndSwap(until, 0) {
		t.updateGauge()
		u.logger.Info("upstream target ejection ended", zap.String("target", t.url))
	}
	return false
}

// connectFailed records a failed connect to t and ejects it once EjectAfter
// consecutive connects failed.
func (u *Upstream) connectFailed(t *target, err error) {
	if u.ejectAfter <= 0 {
		return
	}
	if t.failures.Add(1) < u.ejectAfter {
		return
	}
	now := time.Now().UnixNano()
	old := t.ejectedUntil.Load()
	if old > now {
		return // already ejected by a concurrent failure
	}
	if t.ejectedUntil.CompareAndSwap(old, now+u.ejectFor) {
		u.ejections.Inc()
		t.updateGauge()
		u.logger.Warn("upstream target ejected",
			zap.String("target", t.url),
			zap.Int32("consecutive_failures", t.failures.Load()),
			zap.Duration("for", time.Duration(u.ejectFor)),
			zap.Error(err))
	}
}

// connectSucceeded clears t's failure count and any ejection.
func (u *Upstream) connectSucceeded(t *target) {
	if t.failures.Load() != 0 {
		t.failures.Store(0)
	}
	if t.ejectedUntil.Load() != 0 {
		t.ejectedUntil.Store(0)
		t.updateGauge()
	}
}

// updateGauge publishes whether t takes traffic.
func (t *target) updateGauge() {
	v := 0.0
	if t.healthy.Load() && t.ejectedUntil.Load() == 0 {
		v = 1
	}
	t.gauge.Set(v)
}
