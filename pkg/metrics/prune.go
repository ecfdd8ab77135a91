package metrics

import (
	"strings"

	vm "github.com/VictoriaMetrics/metrics"
)

// Live names the routes, upstreams and upstream targets in service.
type Live struct {
	Routes    []string
	Upstreams []string
	// Targets are (upstream, target URL) pairs.
	Targets [][2]string
}

// Prune removes the series of routes, upstreams and targets the
// configuration no longer has: every series whose route label is not one
// of live.Routes, whose upstream label is not one of live.Upstreams, or
// whose upstream and target labels are not a pair of live.Targets,
// whichever package created it. ForRoute and ForUpstream then start afresh
// for such a name, so a route or upstream added again later exports new
// series (from zero: a counter reset, which rate() and increase() handle).
//
// The caller must make sure nothing still holds the metrics of a pruned
// name: the gateway prunes after a reload, with the names used by every
// configuration generation still open, while no build runs. The registry
// is the process's: one gateway per process.
func Prune(live Live) {
	keepRoutes := labelSet(live.Routes)
	keepUpstreams := labelSet(live.Upstreams)
	keepTargets := make(map[[2]string]struct{}, len(live.Targets))
	for _, t := range live.Targets {
		keepTargets[[2]string{escapeUpstreamLabel(t[0]), escapeUpstreamLabel(t[1])}] = struct{}{}
	}
	routes.Range(func(k, _ any) bool {
		if _, ok := keepRoutes[quote(k.(string))]; !ok {
			routes.Delete(k)
		}
		return true
	})
	upstreams.Range(func(k, _ any) bool {
		if _, ok := keepUpstreams[escapeUpstreamLabel(k.(string))]; !ok {
			upstreams.Delete(k)
		}
		return true
	})
	for _, name := range vm.ListMetricNames() {
		if v, ok := labelValue(name, "route"); ok {
			if _, keep := keepRoutes[v]; !keep {
				vm.UnregisterMetric(name)
				continue
			}
		}
		up, ok := labelValue(name, "upstream")
		if !ok {
			continue
		}
		if _, keep := keepUpstreams[up]; !keep {
			vm.UnregisterMetric(name)
			continue
		}
		if target, ok := labelValue(name, "target"); ok {
			if _, keep := keepTargets[[2]string{up, target}]; !keep {
				vm.UnregisterMetric(name)
			}
		}
	}
}

// labelSet holds names as they appear in label values, under both
// escapings this package uses.
func labelSet(names []string) map[string]struct{} {
	set := make(map[string]struct{}, 2*len(names))
	for _, n := range names {
		set[quote(n)] = struct{}{}
		set[escapeUpstreamLabel(n)] = struct{}{}
	}
	return set
}

// labelValue returns the (still escaped) value of label key in the series
// name metric{k="v",...}.
func labelValue(name, key string) (string, bool) {
	i := strings.IndexByte(name, '{')
	if i < 0 {
		return "", false
	}
	s := name[i+1:]
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return "", false
		}
		k := strings.TrimLeft(s[:eq], ", ")
		// Find the closing quote, skipping escaped characters.
		j := eq + 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return "", false
		}
		if k == key {
			return s[eq+2 : j], true
		}
		s = s[j+1:]
	}
	return "", false
}
