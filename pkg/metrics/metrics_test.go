package metrics

import (
	"bytes"
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
