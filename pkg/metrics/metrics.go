// Package metrics defines every collector the gateway exports, in one
// place, on VictoriaMetrics/metrics' default set. Label values are bounded:
// route, upstream and plugin names from the configuration, fixed reason and
// op names, HTTP methods folded to a fixed list and status codes.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// DurationBuckets are the upper bounds of http_request_duration_seconds.
var DurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

var inflight atomic.Int64

func init() {
	vm.NewGauge("gateway_inflight_requests", func() float64 { return float64(inflight.Load()) })
}

// InflightAdd adds d to gateway_inflight_requests.
func InflightAdd(d int64) { inflight.Add(d) }

// methods are the method label values; anything else is "OTHER".
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"}

// MethodIndex folds a request method to an index into the fixed list.
func MethodIndex(m []byte) int {
	switch string(m) {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "DELETE":
		return 4
	case "PATCH":
		return 5
	case "OPTIONS":
		return 6
	}
	return 7
}

// SizeBuckets are the upper bounds, in bytes, of http_response_size_bytes:
// powers of four from 64 B to 16 MiB.
var SizeBuckets = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20}

// Route holds one route's RED metrics. Every per-method series (the
// duration histogram, the request counters) and the response size
// histogram are created on first use, so a method a route never sees costs
// nothing; once created they are found without locking or allocating.
type Route struct {
	name  string
	label string // name escaped for the text format
	mu    sync.Mutex
	// durations[i] is http_request_duration_seconds of methods[i], nil
	// until the first such request.
	durations [len(methods)]atomic.Pointer[vm.PrometheusHistogram]
	size      atomic.Pointer[vm.PrometheusHistogram]
	counters  atomic.Pointer[map[uint32]*vm.Counter]
	authRej   sync.Map // reason -> *vm.Counter
	rlRej     *vm.Counter
}

var routes sync.Map // name -> *Route

// ForRoute returns the metrics of the named route (the same value across
// reloads, so series continue, until Prune drops a route the configuration
// no longer has).
func ForRoute(name string) *Route {
	if r, ok := routes.Load(name); ok {
		return r.(*Route)
	}
	r := &Route{name: name, label: quote(name)}
	r.counters.Store(&map[uint32]*vm.Counter{})
	r.rlRej = vm.GetOrCreateCounter(`gateway_ratelimit_rejected_total{route="` + r.label + `"}`)
	actual, _ := routes.LoadOrStore(name, r)
	return actual.(*Route)
}

// Observe records one finished request.
func (r *Route) Observe(methodIdx, status int, d time.Duration) {
	h := r.durations[methodIdx].Load()
	if h == nil {
		h = r.duration(methodIdx)
	}
	h.Update(d.Seconds())
	k := uint32(methodIdx)<<16 | uint32(status)
	if c, ok := (*r.counters.Load())[k]; ok {
		c.Inc()
		return
	}
	r.counter(k, methodIdx, status).Inc()
}

// ObserveResponseSize records the body size of one response in
// http_response_size_bytes{route}.
func (r *Route) ObserveResponseSize(n int64) {
	h := r.size.Load()
	if h == nil {
		r.mu.Lock()
		if h = r.size.Load(); h == nil {
			h = vm.GetOrCreatePrometheusHistogramExt(`http_response_size_bytes{route="`+r.label+`"}`, SizeBuckets)
			r.size.Store(h)
		}
		r.mu.Unlock()
	}
	h.Update(float64(n))
}

func (r *Route) duration(methodIdx int) *vm.PrometheusHistogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.durations[methodIdx].Load(); h != nil {
		return h
	}
	h := vm.GetOrCreatePrometheusHistogramExt(
		`http_request_duration_seconds{method="`+methods[methodIdx]+`",route="`+r.label+`"}`, DurationBuckets)
	r.durations[methodIdx].Store(h)
	return h
}

func (r *Route) counter(k uint32, methodIdx, status int) *vm.Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.counters.Load()
	if c, ok := old[k]; ok {
		return c
	}
	c := vm.GetOrCreateCounter(`http_requests_total{method="` + methods[methodIdx] +
		`",route="` + r.label + `",status_code="` + strconv.Itoa(status) + `"}`)
	next := make(map[uint32]*vm.Counter, len(old)+1)
	for kk, v := range old {
		next[kk] = v
	}
	next[k] = c
	r.counters.Store(&next)
	return c
}

// WebSocket returns the tunnel metrics of a route:
// gateway_websocket_connections{route}, the tunnels open now, and
// gateway_websocket_connections_total{route}, the tunnels opened. Only
// routes with websocket: true call it, so other routes export neither.
func (r *Route) WebSocket() (open *vm.Gauge, opened *vm.Counter) {
	label := `{route="` + r.label + `"}`
	return vm.GetOrCreateGauge("gateway_websocket_connections"+label, nil),
		vm.GetOrCreateCounter("gateway_websocket_connections_total" + label)
}

// RateLimitRejected returns gateway_ratelimit_rejected_total{route}.
func (r *Route) RateLimitRejected() *vm.Counter { return r.rlRej }

// IPFilterRejected returns gateway_ip_filter_rejected_total{route}, the
// requests the ip-filter plugin answered 403. Only routes with the plugin
// call it, so other routes do not export it.
func (r *Route) IPFilterRejected() *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_ip_filter_rejected_total{route="` + quote(r.name) + `"}`)
}

// Auth rejection reasons, the fixed label set of gateway_auth_rejected_total.
const (
	ReasonMissing     = "missing"
	ReasonMalformed   = "malformed"
	ReasonSignature   = "signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonIssuer      = "issuer"
	ReasonAudience    = "audience"
	ReasonType        = "type"
	ReasonRevoked     = "revoked"
	ReasonAlgorithm   = "algorithm"
	ReasonForbidden   = "forbidden"
	ReasonStoreError  = "store_error"
	// ReasonUnknownKey is an API key no entry of the keys file has.
	ReasonUnknownKey = "unknown_key"
)

// AuthRejected returns gateway_auth_rejected_total{route,reason}. Call it at
// build time for each reason and keep the counter.
func (r *Route) AuthRejected(reason string) *vm.Counter {
	if c, ok := r.authRej.Load(reason); ok {
		return c.(*vm.Counter)
	}
	c := vm.GetOrCreateCounter(`gateway_auth_rejected_total{route="` + r.label + `",reason="` + reason + `"}`)
	r.authRej.Store(reason, c)
	return c
}

// StoreErrors returns gateway_store_errors_total{op} (op: "ratelimit",
// "revocation_check", "revoke", "ping", ...).
func StoreErrors(op string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_store_errors_total{op="` + quote(op) + `"}`)
}

// Store breaker states, the values of gateway_store_breaker_state.
const (
	BreakerClosed   = 0
	BreakerOpen     = 1
	BreakerHalfOpen = 2
)

var (
	storeBreaker  atomic.Int64
	storeInflight atomic.Pointer[func() int64]
)

func init() {
	vm.NewGauge("gateway_store_breaker_state", func() float64 { return float64(storeBreaker.Load()) })
	vm.NewGauge("gateway_store_inflight_calls", func() float64 {
		if f := storeInflight.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})
}

// SetStoreBreakerState sets gateway_store_breaker_state: BreakerClosed,
// BreakerOpen or BreakerHalfOpen (one probe call in flight).
func SetStoreBreakerState(s int) { storeBreaker.Store(int64(s)) }

// SetStoreInflight makes gateway_store_inflight_calls report f: the store
// calls the client library holds, a caller still waiting or not.
func SetStoreInflight(f func() int64) { storeInflight.Store(&f) }

// StoreBreakerOpened returns gateway_store_breaker_opened_total: how often
// repeated store failures opened the breaker.
func StoreBreakerOpened() *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_store_breaker_opened_total`)
}

// Reasons of gateway_store_rejected_total.
const (
	StoreRejectedOverload = "overload"
	StoreRejectedBreaker  = "breaker_open"
)

// StoreRejected returns gateway_store_rejected_total{reason}: store calls
// refused at once, without reaching the store, because too many were in
// flight (StoreRejectedOverload) or the breaker was open
// (StoreRejectedBreaker).
func StoreRejected(reason string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_store_rejected_total{reason="` + reason + `"}`)
}

// StoreTimeouts returns gateway_store_timeouts_total: store calls whose
// caller's deadline passed before the store answered.
func StoreTimeouts() *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_store_timeouts_total`)
}

// ConnectionsRejected returns gateway_connections_rejected_total{reason}:
// client connections refused with a 503 because they were over
// server.max_connections ("max_connections") or
// server.max_connections_per_ip ("max_connections_per_ip").
func ConnectionsRejected(reason string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_connections_rejected_total{reason="` + reason + `"}`)
}

// ConfigReloads returns gateway_config_reloads_total{result} ("success" or
// "failure").
func ConfigReloads(result string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_config_reloads_total{result="` + result + `"}`)
}

var lastReload atomic.Int64

func init() {
	vm.NewGauge("gateway_config_last_reload_success_timestamp_seconds", func() float64 {
		return float64(lastReload.Load())
	})
}

// SetLastReloadSuccess records the time of the last successful (re)load.
func SetLastReloadSuccess(t time.Time) { lastReload.Store(t.Unix()) }

// SetBuildInfo exports gateway_build_info{version} = 1.
func SetBuildInfo(version string) {
	vm.GetOrCreateGauge(`gateway_build_info{version="`+quote(version)+`"}`, func() float64 { return 1 })
}

// quote escapes a label value for the Prometheus text format.
func quote(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// JWKSKeys returns gateway_jwks_keys{provider}: the keys of the provider's
// remote JSON Web Key Set the gateway holds; 0 until a fetch succeeded, so
// an alert on it catches a provider whose tokens are all refused.
func JWKSKeys(provider string) *vm.Gauge {
	return vm.GetOrCreateGauge(`gateway_jwks_keys{provider="`+quote(provider)+`"}`, nil)
}

// JWKSRefreshErrors returns gateway_jwks_refresh_errors_total{provider}:
// failed downloads of the provider's JSON Web Key Set (the last good set
// stays in use).
func JWKSRefreshErrors(provider string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_jwks_refresh_errors_total{provider="` + quote(provider) + `"}`)
}
