// Package proxy is the upstream side of the gateway: one fasthttp.HostClient
// per target, load balancing, retries, passive ejection and active health
// checks (Upstream), and the header hygiene applied to every proxied request
// and response (PrepareRequest, CleanResponse).
//
// Target selection. A request goes to a target that passes its active health
// checks, is not ejected and has a weight above 0, chosen among those in
// proportion to their weights: a target that drops out (unhealthy, ejected)
// leaves its share to the others in proportion to theirs, and gets it back
// when it returns. Round robin takes the available targets strictly in turn
// when their weights are equal; otherwise it walks a golden-ratio (Weyl)
// sequence over the weights of the targets available at that moment, so
// every target gets its share interleaved with the others rather than in
// runs. Least connections picks the target with the fewest requests in
// flight per unit of weight, ties (such as everything idle) broken the same
// weighted way. Either way a pick is one atomic add and a scan of the
// targets, with no lock and no allocation. A retry goes to a target the
// request has not tried when there is one.
//
// When every target that is not ejected fails its health checks, the
// request still goes to one of them: the upstream fails open, because a
// broken or misconfigured health endpoint must not turn every request into
// a 503 while the targets may well serve traffic. Passive ejection is
// different: it is based on real connection failures, so when every target
// is ejected Do fails fast with ErrUnavailable until the first ejection
// ends. An ejected target is tried again after Config.EjectFor; a single
// further connect failure ejects it again, a successful connect (or a
// passing active check) clears it.
//
// Retries (see Do) are made for the conditions of Config.RetryOn, only for
// idempotent requests whose body the gateway holds, never once Do returned
// a response, and only while the upstream's retry budget has room.
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
	"math/bits"
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
//
// An Upstream is a policy (balancing, weights, retries) over a target set
// (connection pools, health checks, ejections). Derive makes another policy
// over the same target set, so that a configuration reload that changes
// only the policy keeps the connections and health state.
type Upstream struct {
	*targetSet
	key       string
	leastConn bool
	rr        atomic.Uint64
	weights   []uint64 // by target index, 0 to MaxWeight; 0: drained, never picked

	retries      int
	retryConnect bool
	retryStatus  [2]uint64 // bit code-500 set for each retried status
	budget       *retryBudget
	retried      *vm.Counter
}

// targetSet is the part of an upstream that outlives a policy change: the
// targets with their connection pools and health state, and the health
// checkers.
type targetSet struct {
	name    string
	poolKey string
	targets []*target

	timeout    time.Duration
	maxBody    int
	ejectAfter int32
	ejectFor   int64 // nanoseconds

	ejections *vm.Counter
	// metrics counts attempts by outcome (gateway_upstream_requests_total).
	metrics *metrics.Upstream
	logger  *zap.Logger

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
	ts := &targetSet{
		name:       cfg.Name,
		poolKey:    cfg.PoolKey(),
		timeout:    cfg.Timeout,
		maxBody:    cfg.MaxResponseBodySize,
		ejectAfter: int32(min(cfg.EjectAfter, 1<<30)),
		ejectFor:   int64(cfg.EjectFor),
		ejections:  metrics.UpstreamEjections(cfg.Name),
		metrics:    metrics.ForUpstream(cfg.Name),
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
			DialTimeout:         ts.dialFunc(t),
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
		ts.targets = append(ts.targets, t)
	}
	if hc := cfg.HealthCheck; hc != nil {
		for _, t := range ts.targets {
			c := newHealthChecker(ts, t, *hc)
			ts.wg.Add(1)
			go c.run()
		}
	}
	return newPolicy(ts, cfg), nil
}

// newPolicy returns the upstream of cfg (defaults applied, valid) over ts.
func newPolicy(ts *targetSet, cfg Config) *Upstream {
	retryConnect, retryStatus, _ := parseRetryOn(cfg.RetryOn) // validated
	u := &Upstream{
		targetSet:    ts,
		key:          cfg.Key(),
		leastConn:    cfg.Balance == BalanceLeastConn,
		weights:      make([]uint64, len(cfg.Targets)),
		retries:      cfg.Retries,
		retryConnect: retryConnect,
		retryStatus:  retryStatus,
		budget:       newRetryBudget(*cfg.RetryBudget),
		retried:      metrics.UpstreamRetries(cfg.Name),
	}
	for i := range u.weights {
		u.weights[i] = uint64(cfg.weight(i))
	}
	return u
}

// Derive returns the upstream of cfg over u's target set: the same
// connections, health checks and ejections, with cfg's balancing, weights
// and retry settings (and a retry budget of its own). cfg must have u's
// PoolKey. Closing either upstream closes the shared target set, so the
// caller closes only the last one it uses.
func (u *Upstream) Derive(cfg Config) (*Upstream, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, errors.Join(errors.New("proxy: upstream "+cfg.Name+": invalid configuration"), err)
	}
	if cfg.PoolKey() != u.poolKey {
		return nil, errors.New("proxy: upstream " + cfg.Name + ": Derive needs the same targets and connection settings")
	}
	return newPolicy(u.targetSet, cfg), nil
}

// PoolKey returns the canonical string of the settings of the upstream's
// target set (see Config.PoolKey).
func (u *Upstream) PoolKey() string { return u.poolKey }

// Name returns the upstream name.
func (u *Upstream) Name() string { return u.name }

// TargetURLs returns the targets' URLs, as the target label of
// gateway_upstream_target_healthy names them.
func (u *Upstream) TargetURLs() []string {
	out := make([]string, len(u.targets))
	for i, t := range u.targets {
		out[i] = t.url
	}
	return out
}

// Key returns the canonical settings string of the configuration the upstream
// was built from (see Config.Key).
func (u *Upstream) Key() string { return u.key }

// Close stops the health checkers and closes idle connections of the
// target set (shared with upstreams made by Derive). Requests still in
// flight finish on their connections. Close is idempotent.
func (u *targetSet) Close() error {
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
// after Do). timeout bounds the whole exchange, retries included; 0 means
// the upstream's configured Timeout.
//
// Do points the request URI at the chosen target (scheme and host), so the
// Host header becomes the target's host unless req.UseHostHeader is set, in
// which case the request's Host header is kept (preserve_host). The path is
// sent exactly as set on req.URI(); it is not normalised again.
//
// Retries. An idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE,
// RFC 9110 §9.2.2) without a body stream is sent again, up to
// Config.Retries times and on a target it has not tried when there is one,
// when a condition of Config.RetryOn holds: no connection could be had
// (connect failure, or every connection slot busy: nothing was sent), or the
// response status is one of the listed 5xx codes. A retried response is
// dropped before Do returns, so nothing of it reaches the client; once Do
// returned, nothing is retried. Each retry needs room in the retry budget;
// without it, or with no attempts or time left, the last response is
// returned as it is (or the last error). A POST or PATCH is never retried:
// the upstream may have acted on it.
//
// One exception, as in net/http: when a reused keep-alive connection turns
// out to have been closed by the upstream (closed before the first response
// byte), an idempotent request is sent again on a fresh connection to the
// same target, at most three times, and that does not count as a retry. A
// POST never is; instead, connections idle for a second or more are checked
// for a close before reuse. On failure resp is reset and the error wraps
// ErrTimeout, ErrUnavailable or ErrBadGateway (see Classify).
//
// resp may come back with a body stream (see the package documentation); it
// must be written or reset so the upstream connection is released.
func (u *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	return u.DoObserved(req, resp, timeout, nil)
}

// DoObserved is Do, telling obs (when not nil) about each attempt.
func (u *Upstream) DoObserved(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, obs AttemptObserver) error {
	return u.DoObservedFrom(req, resp, timeout, time.Now(), obs)
}

// DoObservedFrom is DoObserved with the exchange's start time read by the
// caller (the timeout runs from start), for a caller that reads the clock
// anyway to time the exchange: one clock read fewer per request.
func (u *Upstream) DoObservedFrom(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration, start time.Time, obs AttemptObserver) error {
	if timeout <= 0 {
		timeout = u.timeout
	}
	deadline := start.Add(timeout)
	canRetry := u.retries > 0 && isIdempotent(&req.Header) && !req.IsBodyStream()
	if canRetry {
		u.budget.request(second(start))
	}
	var (
		tried   uint64
		last    *target
		lastErr error
	)
	// One step of the rotation per request: retries continue from it
	// without moving the shared counter, so that a retry does not shift
	// the next requests' targets.
	c := u.rr.Add(1) - 1
	for attempt := 0; ; attempt++ {
		t := u.pick(tried, c+uint64(attempt))
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
		u.metrics.ObserveAttempt(resp.StatusCode(), err != nil)
		if obs != nil {
			obs.AttemptEnd(resp, err)
		}
		if err == nil {
			if !canRetry || !u.retriesStatus(resp.StatusCode()) || !u.mayRetry(attempt, deadline) {
				return nil
			}
			// The response is dropped (a streamed body closes its
			// connection) before anything of it was written to the client.
			resp.Reset()
			last, lastErr = t, nil
			continue
		}
		last, lastErr = t, err
		if !canRetry || !u.retryConnect || !retryable(err) || !u.mayRetry(attempt, deadline) {
			resp.Reset()
			return u.failure(t, err, deadline)
		}
	}
}

// retriesStatus reports whether RetryOn lists code.
func (u *Upstream) retriesStatus(code int) bool {
	i := uint(code - 500)
	return i < 100 && u.retryStatus[i/64]&(1<<(i%64)) != 0
}

// mayRetry reports whether another attempt may follow attempt (0 for the
// first): attempts and time are left and the budget has room. A true
// answer counts the retry.
func (u *Upstream) mayRetry(attempt int, deadline time.Time) bool {
	if attempt >= u.retries {
		return false
	}
	now := time.Now()
	if !now.Before(deadline) || !u.budget.allow(second(now)) {
		return false
	}
	u.retried.Inc()
	return true
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
// (RFC 9110 §9.2.2; CONNECT is never proxied here).
func isIdempotent(h *fasthttp.RequestHeader) bool {
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

// golden is 2^64 divided by the golden ratio: multiples of it modulo 2^64
// are the Weyl sequence n·φ mod 1 in 64-bit fixed point, the sequence that
// spreads consecutive points most evenly over [0, 1).
const golden = 0x9E3779B97F4A7C15

// pick chooses the target for pick number c, or nil when every target is
// ejected or drained. tried has bit i set for targets this request already
// tried. The candidates are, from most to least preferred: healthy and not
// tried; not tried (every untried target fails its checks: fail open);
// healthy; any. Ejected and weight-0 targets never are.
func (u *Upstream) pick(tried, c uint64) *target {
	var (
		now            int64
		avail, healthy uint64
	)
	for i, t := range u.targets {
		if u.weights[i] == 0 || u.ejected(t, &now) {
			continue
		}
		avail |= t.bit
		if t.healthy.Load() {
			healthy |= t.bit
		}
	}
	switch {
	case healthy&^tried != 0:
		return u.choose(healthy&^tried, c)
	case avail&^tried != 0:
		return u.choose(avail&^tried, c)
	case healthy != 0:
		return u.choose(healthy, c)
	case avail != 0:
		return u.choose(avail, c)
	}
	return nil
}

// choose picks among the targets of set (bit i for target i, not empty) by
// the balancing strategy; c is the pick's number.
func (u *Upstream) choose(set, c uint64) *target {
	if u.leastConn {
		set = u.leastLoaded(set)
	}
	if set&(set-1) == 0 {
		return u.targets[bits.TrailingZeros64(set)]
	}
	return u.weighted(set, c)
}

// weighted picks among the targets of set in proportion to their weights.
// Equal weights take turns strictly in order (pick c goes to the candidate
// c mod their number). Otherwise each target owns a stretch of [0, 2^64) as
// long as its weight, and pick c goes to the owner of the c-th point of the
// Weyl sequence.
func (u *Upstream) weighted(set, c uint64) *target {
	var total uint64
	w0, equal := u.weights[bits.TrailingZeros64(set)], true
	for s := set; s != 0; s &= s - 1 {
		w := u.weights[bits.TrailingZeros64(s)]
		total += w
		equal = equal && w == w0
	}
	if equal {
		k := c % uint64(bits.OnesCount64(set))
		s := set
		for ; k > 0; k-- {
			s &= s - 1
		}
		return u.targets[bits.TrailingZeros64(s)]
	}
	// total ≤ MaxTargets·MaxWeight < 2^32, so the product fits.
	pos := (c * golden >> 32) * total >> 32
	var i int
	for s := set; s != 0; s &= s - 1 {
		i = bits.TrailingZeros64(s)
		if pos < u.weights[i] {
			break
		}
		pos -= u.weights[i]
	}
	return u.targets[i]
}

// leastLoaded returns the targets of set with the fewest requests in flight
// per unit of weight.
func (u *Upstream) leastLoaded(set uint64) uint64 {
	var (
		bestLoad, bestWeight int64
		ties                 uint64
	)
	for s := set; s != 0; s &= s - 1 {
		i := bits.TrailingZeros64(s)
		t, w := u.targets[i], int64(u.weights[i])
		load := t.inflight.Load()
		if ties == 0 {
			bestLoad, bestWeight, ties = load, w, t.bit
			continue
		}
		// load/w against bestLoad/bestWeight, without division.
		l, r := load*bestWeight, bestLoad*w
		switch {
		case l < r:
			bestLoad, bestWeight, ties = load, w, t.bit
		case l == r:
			ties |= t.bit
		}
	}
	return ties
}

// ejected reports whether t is currently ejected, lifting an ejection whose
// time is up. now caches the current time across one pick.
func (u *targetSet) ejected(t *target, now *int64) bool {
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
func (u *targetSet) connectFailed(t *target, err error) {
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
func (u *targetSet) connectSucceeded(t *target) {
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
