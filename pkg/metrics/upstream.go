package metrics

import (
	"strings"

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
