package metrics

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRouteMetricsExported(t *testing.T) {
	r := ForRoute("metrics-test")
	if ForRoute("metrics-test") != r {
		t.Fatal("ForRoute must return the same value for a name (series survive reloads)")
	}
	r.Observe(MethodIndex([]byte("GET")), 200, 3*time.Millisecond)
	r.Observe(MethodIndex([]byte("GET")), 200, 30*time.Millisecond)
	r.Observe(MethodIndex([]byte("BREW")), 418, time.Millisecond)
	r.RateLimitRejected().Inc()
	r.AuthRejected(ReasonExpired).Inc()
	StoreErrors("test_op").Inc()
	var buf bytes.Buffer
	WritePrometheus(&buf)
	out := buf.String()
	for _, want := range []string{
		`http_requests_total{method="GET",route="metrics-test",status_code="200"} 2`,
		`http_requests_total{method="OTHER",route="metrics-test",status_code="418"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="metrics-test",le="0.005"} 1`,
		`http_request_duration_seconds_bucket{method="GET",route="metrics-test",le="0.05"} 2`,
		`http_request_duration_seconds_count{method="GET",route="metrics-test"} 2`,
		`gateway_ratelimit_rejected_total{route="metrics-test"} 1`,
		`gateway_auth_rejected_total{route="metrics-test",reason="expired"} 1`,
		`gateway_store_errors_total{op="test_op"} 1`,
		`gateway_inflight_requests `,
		`process_open_fds `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestQuoteLabel(t *testing.T) {
	if got := quote(`a"b\c`); got != `a\"b\\c` {
		t.Fatalf("quote = %s", got)
	}
}

func TestPerMethodSeriesAppearOnFirstUse(t *testing.T) {
	r := ForRoute("lazy-route")
	out := scrape()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "http_") && strings.Contains(line, `route="lazy-route"`) {
			t.Fatalf("exported before any request: %s", line)
		}
	}
	r.Observe(MethodIndex([]byte("POST")), 201, 20*time.Millisecond)
	out = scrape()
	for _, want := range []string{
		`http_request_duration_seconds_count{method="POST",route="lazy-route"} 1`,
		`http_requests_total{method="POST",route="lazy-route",status_code="201"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"} {
		if strings.Contains(out, `{method="`+m+`",route="lazy-route"`) {
			t.Errorf("series of method %s exported though none was seen", m)
		}
	}
	if strings.Contains(out, `http_response_size_bytes_count{route="lazy-route"}`) {
		t.Error("response size series exported before any response size was observed")
	}
	r.ObserveResponseSize(100)
	r.ObserveResponseSize(70000)
	out = scrape()
	for _, want := range []string{
		`http_response_size_bytes_bucket{route="lazy-route",le="256"} 1`,
		`http_response_size_bytes_bucket{route="lazy-route",le="262144"} 2`,
		`http_response_size_bytes_sum{route="lazy-route"} 70100`,
		`http_response_size_bytes_count{route="lazy-route"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestUpstreamCodeClasses(t *testing.T) {
	u := ForUpstream("classes")
	if ForUpstream("classes") != u {
		t.Fatal("ForUpstream must return the same value for a name")
	}
	out := scrape()
	for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "error"} {
		if !strings.Contains(out, `gateway_upstream_requests_total{upstream="classes",code_class="`+c+`"} 0`) {
			t.Errorf("code class %s not exported at zero", c)
		}
	}
	if strings.Contains(out, `upstream="classes",code_class="1xx"`) {
		t.Error("1xx exported before any 1xx answer")
	}
	tests := []struct {
		giveStatus int
		giveFailed bool
		wantClass  string
	}{
		{101, false, "1xx"},
		{200, false, "2xx"},
		{204, false, "2xx"},
		{304, false, "3xx"},
		{404, false, "4xx"},
		{503, false, "5xx"},
		{599, false, "5xx"},
		{200, true, "error"},
		{0, true, "error"},
		{0, false, "error"},
	}
	want := map[string]int{}
	for _, tt := range tests {
		u.ObserveAttempt(tt.giveStatus, tt.giveFailed)
		want[tt.wantClass]++
	}
	out = scrape()
	for class, n := range want {
		line := `gateway_upstream_requests_total{upstream="classes",code_class="` + class + `"} ` + strconv.Itoa(n)
		if !strings.Contains(out, line) {
			t.Errorf("missing %s", line)
		}
	}
}

func TestPruneDropsRemovedRoutesAndUpstreams(t *testing.T) {
	keep, gone := ForRoute("prune-keep"), ForRoute(`prune-"gone"`)
	for _, r := range []*Route{keep, gone} {
		r.Observe(0, 200, time.Millisecond)
		r.ObserveResponseSize(10)
		r.AuthRejected(ReasonMissing).Inc()
	}
	ForUpstream("prune-up-keep").ObserveAttempt(200, false)
	ForUpstream("prune-up-gone").ObserveAttempt(200, false)
	UpstreamTargetHealthy("prune-up-gone", "http://127.0.0.1:2").Set(1)
	UpstreamTargetHealthy("prune-up-keep", "http://127.0.0.1:3").Set(1)
	UpstreamTargetHealthy("prune-up-keep", "http://127.0.0.1:4").Set(1)

	var liveRoutes, liveUpstreams []string
	routes.Range(func(k, _ any) bool {
		if k != `prune-"gone"` {
			liveRoutes = append(liveRoutes, k.(string))
		}
		return true
	})
	upstreams.Range(func(k, _ any) bool {
		if k != "prune-up-gone" {
			liveUpstreams = append(liveUpstreams, k.(string))
		}
		return true
	})
	Prune(Live{Routes: liveRoutes, Upstreams: liveUpstreams, Targets: [][2]string{{"prune-up-keep", "http://127.0.0.1:3"}}})
	out := scrape()
	for _, gone := range []string{`route="prune-\"gone\""`, `upstream="prune-up-gone"`, `target="http://127.0.0.1:4"`} {
		if strings.Contains(out, gone) {
			t.Errorf("series with %s still exported after Prune", gone)
		}
	}
	for _, kept := range []string{
		`http_requests_total{method="GET",route="prune-keep",status_code="200"} 1`,
		`http_response_size_bytes_count{route="prune-keep"} 1`,
		`gateway_auth_rejected_total{route="prune-keep",reason="missing"} 1`,
		`gateway_upstream_requests_total{upstream="prune-up-keep",code_class="2xx"} 1`,
		`gateway_upstream_target_healthy{upstream="prune-up-keep",target="http://127.0.0.1:3"} 1`,
	} {
		if !strings.Contains(out, kept) {
			t.Errorf("missing %s after Prune", kept)
		}
	}
	if ForRoute("prune-keep") != keep {
		t.Error("Prune dropped a live route's metrics")
	}
	// A route added again starts afresh, exported again.
	again := ForRoute(`prune-"gone"`)
	if again == gone {
		t.Fatal("ForRoute returned the pruned route's metrics")
	}
	again.Observe(0, 200, time.Millisecond)
	if !strings.Contains(scrape(), `http_requests_total{method="GET",route="prune-\"gone\"",status_code="200"} 1`) {
		t.Error("route added again after Prune is not exported")
	}
}

func TestLabelValue(t *testing.T) {
	tests := []struct {
		giveName string
		giveKey  string
		want     string
		wantOK   bool
	}{
		{`a{route="x"}`, "route", "x", true},
		{`a{method="GET",route="x",status_code="200"}`, "route", "x", true},
		{`a{method="GET",route="x",status_code="200"}`, "status_code", "200", true},
		{`a{name="q\"route=\"y",route="z"}`, "route", "z", true},
		{`a{upstream="u"}`, "route", "", false},
		{`a`, "route", "", false},
		{`a{route="unterminated}`, "route", "", false},
	}
	for _, tt := range tests {
		got, ok := labelValue(tt.giveName, tt.giveKey)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("labelValue(%s, %s) = %q, %v; want %q, %v", tt.giveName, tt.giveKey, got, ok, tt.want, tt.wantOK)
		}
	}
}
