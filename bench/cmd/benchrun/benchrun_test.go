package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/bench/loadgen"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

const wrkOutput = `Running 6s test @ http://127.0.0.1:40001/bench/hello
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  482.34us   5.05ms   78.29%
    Req/Sec    36.34k     3.81k   45.11k    63.33%
  Latency Distribution
     50%  850.00us
     75%    1.30ms
     90%    1.60ms
     99%    2.50ms
  108546 requests in 3.00s, 16.46MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:  36139.01
Transfer/sec:      5.48MB
`

func TestParseWrk(t *testing.T) {
	ph, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := phase{RPS: 36139.01, Requests: 108546, Non2xx: 12, Errors: 6}
	if ph.RPS != want.RPS || ph.Requests != want.Requests || ph.Non2xx != want.Non2xx || ph.Errors != want.Errors {
		t.Fatalf("parsed %+v, want %+v", ph, want)
	}
	if ph.Latency == nil || ph.Latency.P50 != 0.85 || ph.Latency.P90 != 1.6 || ph.Latency.P99 != 2.5 {
		t.Fatalf("latency %+v", ph.Latency)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused")); err == nil {
		t.Fatal("no error for output without a result")
	}
}

func TestParseBench(t *testing.T) {
	out := `goos: linux
BenchmarkChain/memory-2              	   20000	     31362 ns/op	       0 B/op	       0 allocs/op
BenchmarkChain/redis-2               	   20000	    244964 ns/op	    1542 B/op	      26 allocs/op
BenchmarkPluginChain/memory          	   20000	      1400 ns/op	       0 B/op	       0 allocs/op
BenchmarkServe/redis-2          	   30000	     83076 ns/op	         0 non200/op	    1425 B/op	      23 allocs/op
--- FAIL: BenchmarkServe/memory-2
PASS`
	got := parseBench(out)
	want := []microResult{
		{Name: "BenchmarkChain/memory", NsPerOp: 31362},
		{Name: "BenchmarkChain/redis", NsPerOp: 244964, BytesPerOp: 1542, AllocsPerOp: 26},
		{Name: "BenchmarkPluginChain/memory", NsPerOp: 1400},
		{Name: "BenchmarkServe/redis", NsPerOp: 83076, BytesPerOp: 1425, AllocsPerOp: 23},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want float64
	}{
		{name: "empty", give: nil, want: 0},
		{name: "odd", give: []float64{3, 1, 2}, want: 2},
		{name: "even", give: []float64{4, 1, 3, 2}, want: 2.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.give); got != tt.want {
				t.Fatalf("median %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name        string
		give        budget
		wantVerdict string
		wantNote    string
	}{
		{name: "ratio met", give: budget{Measured: 0.96, Target: 0.95, Op: ">="}, wantVerdict: "PASS"},
		{name: "ratio missed", give: budget{Measured: 0.76, Target: 0.95, Op: ">="}, wantVerdict: "MISS", wantNote: "20.0 % below the target"},
		{name: "bound met", give: budget{Measured: 0.4, Target: 1, Op: "<"}, wantVerdict: "PASS"},
		{name: "bound missed", give: budget{Measured: 45, Target: 30, Op: "<"}, wantVerdict: "MISS", wantNote: "50.0 % over the target"},
		{name: "zero allocs", give: budget{Measured: 0, Target: 0, Op: "="}, wantVerdict: "PASS"},
		{name: "allocs", give: budget{Measured: 3, Target: 0, Op: "="}, wantVerdict: "MISS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := verdict(tt.give)
			if got.Verdict != tt.wantVerdict || got.Note != tt.wantNote {
				t.Fatalf("verdict %q note %q, want %q %q", got.Verdict, got.Note, tt.wantVerdict, tt.wantNote)
			}
		})
	}
}

// TestReport builds a report from made-up phases and checks the medians,
// the budgets and the rendering.
func TestReport(t *testing.T) {
	r := newReport(&options{proxyCPU: "1", loadCPU: "0", rounds: 3, conns: 50, connsHigh: 256, users: 10, size: 64})
	r.Pinned = true
	r.LatencyRate = 5000
	thr := func(rps float64) *phase {
		return &phase{Kind: "throughput", RPS: rps, ProxyCPU: 99, ProxyRSSMiB: 12, CPUBusy: map[string]float64{"0": 80, "1": 100}}
	}
	lat := func(p99 float64) *phase {
		return &phase{Kind: "latency", Latency: &loadgen.Percentiles{P50: 0.3, P99: p99, P999: 2 * p99}}
	}
	add := func(name string, rps []float64, p99 float64, skip string) {
		s := r.add(&scenario{name: name, skip: skip})
		for _, v := range rps {
			s.Phases = append(s.Phases, thr(v), lat(p99))
		}
		s.Phases = append(s.Phases, &phase{Kind: "conns", ProxyRSSMiB: 20})
	}
	add(scDirect, []float64{100, 90, 110}, 0.5, "")
	add(scFasthttpMin, []float64{50, 52, 48}, 0.9, "")
	add(scPassthrough, []float64{49, 47, 51}, 1.0, "")
	add(scChainMemory, []float64{40, 41, 39}, 1.2, "")
	add(scChainRedis, []float64{30, 29, 31}, 1.9, "")
	add(scNginx, []float64{45, 46, 44}, 1.1, "")
	add(scHAProxyJWT, nil, 0, "haproxy not installed")
	add(scChainTLS, []float64{30, 31, 29}, 1.5, "")
	add(scNginxTLS, []float64{40, 40, 40}, 1.3, "")
	hs := r.add(&scenario{name: scChainTLSHandshake})
	hs.Phases = append(hs.Phases, thr(5), thr(6), thr(4))
	hn := r.add(&scenario{name: scNginxTLSHandshake})
	hn.Phases = append(hn.Phases, thr(8), thr(8), thr(8))
	r.Micro = []microResult{{Name: "BenchmarkChain/memory", AllocsPerOp: 0}}
	r.finish()

	if s := r.byName[scPassthrough]; s.RPS != 49 || s.P99 != 1.0 || math.Abs(*s.AddedP99-0.5) > 1e-9 {
		t.Fatalf("passthrough summary %+v", s)
	}
	if s := r.byName[scChainTLSHandshake]; s.RPS != 5 || s.AddedP99 != nil {
		t.Fatalf("handshake summary %+v (no latency phase, so no added p99)", s)
	}
	want := map[string]string{
		"passthrough / fasthttp-min":          "PASS", // 49/50
		"passthrough / nginx":                 "PASS", // 49/45
		"chain-memory / passthrough":          "MISS", // 40/49
		"chain-redis / haproxy-jwt":           "n/a",
		"chain-tls / nginx-tls":               "MISS", // 30/40
		"allocs/op, Chain/memory":             "PASS",
		"RSS at 256 connections, chain-redis": "PASS",
	}
	got := map[string]string{}
	for _, b := range r.Budgets {
		got[b.Name] = b.Verdict
	}
	for name, v := range want {
		if got[name] != v {
			t.Fatalf("budget %q: %q, want %q (all: %v)", name, got[name], v, got)
		}
	}
	md := r.markdown()
	for _, s := range []string{"| passthrough | 49 | 1.09 |", "haproxy-jwt | skipped: haproxy not installed", "chain-memory / passthrough | 0.82 × | ≥ 0.85 × | MISS (4.0 % below the target)", "only ratios from the same run",
		"chain-tls / nginx-tls | 0.75 × | ≥ 0.80 × | MISS", "chain-tls-handshake 5 req/s, nginx-tls-handshake 8 req/s (0.62 × nginx)"} {
		if !strings.Contains(md, s) {
			t.Fatalf("markdown lacks %q:\n%s", s, md)
		}
	}
	dir := t.TempDir()
	if err := r.writeJSON(filepath.Join(dir, "r.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.plot(filepath.Join(dir, "r.png")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "r.png")); err != nil || st.Size() == 0 {
		t.Fatalf("chart not written: %v", err)
	}
}

// TestGatewayConfigsAreValid checks the scenario configurations with the
// same build gatewayd -check runs, so they follow the configuration format.
func TestGatewayConfigsAreValid(t *testing.T) {
	e := &env{dir: t.TempDir(), upstream: "127.0.0.1:9", redis: "127.0.0.1:6379", secret: randomSecret()}
	if err := e.tlsCertificate(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{scPassthrough, scChainMemory, scChainRedis, scChainRedisLease, scChainTLS, scChainTLSHandshake} {
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse(name+".yaml", []byte(e.gatewayYAML(name, 8080, 9901)))
			if err := gateway.Check(cfg, err, builtin.Registry()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHAProxyConfigIsValid checks the haproxy-jwt configuration with
// haproxy -c when HAProxy is installed.
func TestHAProxyConfigIsValid(t *testing.T) {
	bin, err := lookPath("haproxy", "/usr/sbin/haproxy")
	if err != nil {
		t.Skip("haproxy not installed")
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	text := strings.NewReplacer("{{SECRET}}", randomSecret(), "{{UPSTREAM}}", "127.0.0.1:9", "{{PORT}}", "8080").Replace(haproxyConfig)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}
