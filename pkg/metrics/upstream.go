package metrics

import (
	"strings"
	"sync"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
)

// UpstreamEjections returns the counter
// gateway_upstream_ejections_total{upstream}, incremented each time passive
// health checking ejects a target of that upstream.
func UpstreamEjections(upstream string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_upstream_ejections_total{upstream="` +
		escapeUpstreamLabel(upstream) + `"}`)
}

// UpstreamTargetHealthy returns the gauge
// gateway_upstream_target_healthy{upstream,target}: 1 while the target takes
// traffic (passing its active health checks, or not checked, and not ejected),
// 0 otherwise.
func UpstreamTargetHealthy(upstream, target string) *vm.Gauge {
	return vm.GetOrCreateGauge(`gateway_upstream_target_healthy{upstream="`+
		escapeUpstreamLabel(upstream)+`",target="`+escapeUpstreamLabel(target)+`"}`, nil)
}

// upstreamLabelEscaper escapes a label value for the Prometheus text format.
var upstreamLabelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeUpstreamLabel(v string) string {
	return upstreamLabelEscaper.Replace(v)
}

// Upstream holds the metrics of one configured upstream, by name: the same
// value across reloads, so series continue, until Prune drops an upstream
// the configuration no longer has.
type Upstream struct {
	label    string // name escaped for the text format
	duration *vm.PrometheusHistogram
	mu       sync.Mutex
	// classes[i] is gateway_upstream_requests_total of codeClasses[i].
	classes [len(codeClasses)]atomic.Pointer[vm.Counter]
}

// codeClasses are the code_class values of gateway_upstream_requests_total.
var codeClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "error"}

const classError = len(codeClasses) - 1

var upstreams sync.Map // name -> *Upstream

// ForUpstream returns the metrics of the named upstream. The code classes
// 2xx to 5xx and error are exported at zero from the start, so increase()
// and rate() see an upstream's first failure; 1xx (a WebSocket handshake's
// 101) appears with the first such answer.
func ForUpstream(name string) *Upstream {
	if u, ok := upstreams.Load(name); ok {
		return u.(*Upstream)
	}
	u := &Upstream{label: escapeUpstreamLabel(name)}
	u.duration = vm.GetOrCreatePrometheusHistogramExt(
		`gateway_upstream_duration_seconds{upstream="`+u.label+`"}`, DurationBuckets)
	for i := 1; i < len(codeClasses); i++ {
		u.class(i)
	}
	actual, _ := upstreams.LoadOrStore(name, u)
	return actual.(*Upstream)
}

// UpstreamDuration returns gateway_upstream_duration_seconds{upstream}.
func UpstreamDuration(upstream string) *vm.PrometheusHistogram {
	return ForUpstream(upstream).duration
}

// Duration returns gateway_upstream_duration_seconds{upstream}.
func (u *Upstream) Duration() *vm.PrometheusHistogram { return u.duration }

// ObserveAttempt counts one upstream attempt in
// gateway_upstream_requests_total{upstream,code_class}: failed (no valid
// response: connect failure, timeout, reset, malformed answer) counts as
// error, otherwise status's class.
func (u *Upstream) ObserveAttempt(status int, failed bool) {
	i := classError
	if !failed && status >= 100 {
		i = min(status/100, 5) - 1
	}
	c := u.classes[i].Load()
	if c == nil {
		c = u.class(i)
	}
	c.Inc()
}

func (u *Upstream) class(i int) *vm.Counter {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c := u.classes[i].Load(); c != nil {
		return c
	}
	c := vm.GetOrCreateCounter(`gateway_upstream_requests_total{upstream="` + u.label +
		`",code_class="` + codeClasses[i] + `"}`)
	u.classes[i].Store(c)
	return c
}
