package metrics

import vm "github.com/VictoriaMetrics/metrics"

// UpstreamRetries returns the counter gateway_upstream_retries_total{upstream},
// incremented for each retry the upstream makes (a further attempt of a
// request after a connect failure or a retried 5xx status; see retry_on).
func UpstreamRetries(upstream string) *vm.Counter {
	return vm.GetOrCreateCounter(`gateway_upstream_retries_total{upstream="` +
		escapeUpstreamLabel(upstream) + `"}`)
}
