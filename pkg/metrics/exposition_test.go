package metrics

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// scrape returns the exposition text.
func scrape() string {
	var buf bytes.Buffer
	WritePrometheus(&buf)
	return buf.String()
}

// families parses the exposition's # HELP and # TYPE lines, and the family
// of every sample line.
func families(t *testing.T, text string) (help, typ map[string]string, samples map[string]bool) {
	t.Helper()
	help, typ, samples = map[string]string{}, map[string]string{}, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, text, _ := strings.Cut(line[len("# HELP "):], " ")
			help[name] = text
		case strings.HasPrefix(line, "# TYPE "):
			name, kind, _ := strings.Cut(line[len("# TYPE "):], " ")
			typ[name] = kind
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base := strings.TrimSuffix(name, suffix); base != name && (typ[base] == "histogram" || typ[base] == "summary") {
					name = base
				}
			}
			samples[name] = true
		}
	}
	return help, typ, samples
}

// touchAll creates a series of every metric this package defines.
func touchAll() {
	r := ForRoute("expo-route")
	r.Observe(MethodIndex([]byte("GET")), 200, time.Millisecond)
	r.ObserveResponseSize(512)
	r.RateLimitRejected().Inc()
	r.AuthRejected(ReasonExpired).Inc()
	r.WebSocket()
	u := ForUpstream("expo-upstream")
	u.ObserveAttempt(200, false)
	u.Duration().Update(0.01)
	UpstreamEjections("expo-upstream")
	UpstreamTargetHealthy("expo-upstream", "http://127.0.0.1:1").Set(1)
	StoreErrors("expo")
	StoreBreakerOpened()
	StoreRejected(StoreRejectedOverload)
	StoreTimeouts()
	ConnectionsRejected("max_connections")
	ConfigReloads("success")
	SetBuildInfo("expo")
	JWKSKeys("expo")
	JWKSRefreshErrors("expo")
	SetTLSCertificates([]TLSCertificate{{Name: "expo.example", NotAfter: time.Now().Add(time.Hour)}})
}

func TestEveryFamilyHasHelpAndType(t *testing.T) {
	touchAll()
	help, typ, samples := families(t, scrape())
	if len(samples) < 40 {
		t.Fatalf("only %d families exported", len(samples))
	}
	for name := range samples {
		if help[name] == "" {
			t.Errorf("%s: no # HELP text", name)
		}
		if typ[name] == "" {
			t.Errorf("%s: no # TYPE", name)
		}
		if strings.HasPrefix(name, "gateway_") || strings.HasPrefix(name, "http_") {
			if _, ok := Help[name]; !ok {
				t.Errorf("%s: no entry in Help", name)
			}
		}
	}
	for _, want := range []string{"http_requests_total", "http_request_duration_seconds", "http_response_size_bytes",
		"gateway_upstream_requests_total", "gateway_upstream_duration_seconds", "go_goroutines", "process_open_fds"} {
		if !samples[want] {
			t.Errorf("%s not exported", want)
		}
	}
	if typ["http_response_size_bytes"] != "histogram" || typ["gateway_upstream_requests_total"] != "counter" {
		t.Errorf("types: http_response_size_bytes %s, gateway_upstream_requests_total %s",
			typ["http_response_size_bytes"], typ["gateway_upstream_requests_total"])
	}
}

// TestRuntimeFamiliesFollowNamingRules checks the renames and type
// corrections applied to the runtime metrics the library writes.
func TestRuntimeFamiliesFollowNamingRules(t *testing.T) {
	_, typ, samples := families(t, scrape())
	for from, to := range renamed {
		if samples[from] {
			t.Errorf("%s exported under its library name", from)
		}
		if !samples[to] {
			t.Errorf("%s (was %s) not exported", to, from)
		}
	}
	for name, kind := range typ {
		if strings.HasSuffix(name, "_total") && kind != "counter" {
			t.Errorf("%s is a %s ending in _total", name, kind)
		}
	}
}

// TestHelpTextsNeedNoEscaping keeps Help values writable as they are: the
// text format would need \\ and \n escaped in HELP lines.
func TestHelpTextsNeedNoEscaping(t *testing.T) {
	for name, text := range Help {
		if strings.ContainsAny(text, "\\\n") || strings.TrimSpace(text) != text || text == "" {
			t.Errorf("%s: help text %q is empty, padded or needs escaping", name, text)
		}
	}
}

func TestAnnotateKeepsHelpTextAndSamples(t *testing.T) {
	in := "# HELP foo_seconds\n# TYPE foo_seconds gauge\nfoo_seconds{a=\"b\"} 1\n" +
		"# HELP bar_total has its own text\n# TYPE bar_total counter\nbar_total 2\n" +
		"# HELP go_cgo_calls_count\n# TYPE go_cgo_calls_count counter\ngo_cgo_calls_count 3\n" +
		"# HELP process_io_read_bytes_total\n# TYPE process_io_read_bytes_total gauge\nprocess_io_read_bytes_total 4\n"
	var out bytes.Buffer
	annotate(&out, []byte(in))
	want := "# HELP foo_seconds Metric foo_seconds of gatewayd.\n# TYPE foo_seconds gauge\nfoo_seconds{a=\"b\"} 1\n" +
		"# HELP bar_total has its own text\n# TYPE bar_total counter\nbar_total 2\n" +
		"# HELP go_cgo_calls_total " + Help["go_cgo_calls_total"] + "\n# TYPE go_cgo_calls_total counter\ngo_cgo_calls_total 3\n" +
		"# HELP process_io_read_bytes_total " + Help["process_io_read_bytes_total"] + "\n# TYPE process_io_read_bytes_total counter\nprocess_io_read_bytes_total 4\n"
	if out.String() != want {
		t.Fatalf("annotate:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestPromtoolCheckMetrics runs promtool's linter over a scrape with a
// series of every metric this package defines.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install it to lint the exposition (Debian/Ubuntu: apt-get install -y prometheus)")
	}
	touchAll()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
