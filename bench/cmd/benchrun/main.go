// Command benchrun runs the load scenarios of bench/ side by side and
// reports them against the performance budgets of SPEC §8.
//
// Every proxy under test runs on one CPU (taskset, GOMAXPROCS=1, one worker
// or thread); the load generator, the upstream and Redis share the other.
// After a warm-up, each round runs every scenario in turn (A B C … A B C …)
// and the report gives medians over the rounds:
//
//   - throughput: closed loop, 50 connections (wrk with per-user tokens
//     when installed, else bench/load);
//   - latency: bench/load open loop at one rate for every scenario,
//     corrected for coordinated omission;
//   - after the rounds, resident memory at 256 connections.
//
// It prints a markdown table, writes bench/results/<timestamp>.json and,
// with -plot, a PNG chart next to it. `make bench` runs it through
// bench/run.sh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/bench/loadgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command line.
type options struct {
	bin          string
	gatewayd     string
	results      string
	root         string
	scenarios    string
	rounds       int
	duration     time.Duration
	latencyDur   time.Duration
	warmup       time.Duration
	conns        int
	connsHigh    int
	highDur      time.Duration
	rate         float64
	rateFraction float64
	users        int
	size         int
	upLatency    time.Duration
	gen          string
	proxyCPU     string
	loadCPU      string
	noPin        bool
	plot         bool
	micro        bool
	keep         bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin/bench", "directory holding the bench tools (upstream, fasthttp-min, load)")
	fs.StringVar(&o.gatewayd, "gatewayd", "bin/gatewayd", "gatewayd binary")
	fs.StringVar(&o.results, "results", "bench/results", "directory for <timestamp>.json (and .png)")
	fs.StringVar(&o.root, "root", ".", "module root, for the micro-benchmark")
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(allScenarios, ","), "scenarios to run, in round order")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "throughput phase per scenario and round")
	fs.DurationVar(&o.latencyDur, "latency-duration", 4*time.Second, "open-loop latency phase per scenario and round")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up per scenario")
	fs.IntVar(&o.conns, "c", 50, "connections of the throughput and latency phases")
	fs.IntVar(&o.connsHigh, "c-high", 256, "connections of the memory phase (0 skips it)")
	fs.DurationVar(&o.highDur, "high-duration", 3*time.Second, "memory phase per scenario")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop rate of the latency phase (0: -rate-fraction of the slowest scenario's warm-up throughput)")
	fs.Float64Var(&o.rateFraction, "rate-fraction", 0.5, "see -rate")
	fs.IntVar(&o.users, "users", 1000, "distinct users (access tokens) the requests are spread over")
	fs.IntVar(&o.size, "size", 64, "upstream response body size in bytes")
	fs.DurationVar(&o.upLatency, "upstream-latency", 0, "upstream delay per response")
	fs.StringVar(&o.gen, "gen", "auto", "throughput generator: auto (wrk when installed), wrk or load")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "1", "CPU of the proxy under test")
	fs.StringVar(&o.loadCPU, "load-cpu", "0", "CPU of the load generator, upstream and redis")
	fs.BoolVar(&o.noPin, "no-pin", false, "do not pin processes to CPUs")
	fs.BoolVar(&o.plot, "plot", false, "also render <timestamp>.png (throughput and latency per scenario)")
	fs.BoolVar(&o.micro, "micro", true, "also run the whole-chain micro-benchmark (go -C bench test ./chain) for the allocation budget")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configs, logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.rounds < 1 || o.conns < 1 || o.duration <= 0 || o.latencyDur <= 0 || o.users < 1 {
		return nil, errors.New("benchrun: -rounds, -c, -users, -duration and -latency-duration must be positive")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := benchmark(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	fmt.Fprint(stdout, rep.markdown())
	if err := os.MkdirAll(o.results, 0o755); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	base := filepath.Join(o.results, rep.Started.UTC().Format("20060102T150405Z"))
	if err := rep.writeJSON(base + ".json"); err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nResults: %s.json\n", base)
	if o.plot {
		if err := rep.plot(base + ".png"); err != nil {
			fmt.Fprintln(stderr, "benchrun: plot:", err)
			return 1
		}
		fmt.Fprintf(stdout, "Chart: %s.png\n", base)
	}
	return 0
}

// logf prints a progress line on stderr.
func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func benchmark(ctx context.Context, o *options, log io.Writer) (*report, error) {
	names := splitList(o.scenarios)
	for _, n := range names {
		if _, ok := scenarioDescriptions[n]; !ok {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", n, strings.Join(allScenarios, ", "))
		}
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	gatewayd, err := filepath.Abs(o.gatewayd)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{gatewayd, filepath.Join(bin, "upstream"), filepath.Join(bin, "fasthttp-min"), filepath.Join(bin, "load")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (bench/run.sh builds everything)", err)
		}
	}
	dir, err := os.MkdirTemp("", "gatewayd-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		logf(log, "working directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep := newReport(o)
	e := &env{dir: dir, bin: bin, gatewayd: gatewayd, secret: randomSecret()}
	defer e.stopAll()

	if !o.noPin {
		ts, err := exec.LookPath("taskset")
		switch {
		case err != nil:
			rep.note("taskset not found: processes are not pinned; the proxy competes with the load generator for CPUs")
		case rep.Machine.CPUs < 2:
			rep.note("fewer than 2 CPUs: processes are not pinned")
		default:
			e.pin = pinning{taskset: ts, proxyCPU: o.proxyCPU, loadCPU: o.loadCPU}
		}
	}
	rep.Pinned = e.pin.taskset != ""

	ttl := time.Duration(len(names)*o.rounds)*(o.duration+o.latencyDur+5*time.Second) + time.Hour
	e.tokens, err = loadgen.MintTokens(loadgen.TokenOptions{Secret: []byte(e.secret), Issuer: "gatewayd-auth",
		Audience: "api", Role: "user", Users: o.users, TTL: ttl})
	if err != nil {
		return nil, err
	}
	g := &generator{env: e, loadBin: filepath.Join(bin, "load"), tokensPath: filepath.Join(dir, "tokens.txt")}
	f, err := os.Create(g.tokensPath)
	if err != nil {
		return nil, err
	}
	if err := loadgen.WriteTokens(f, e.tokens); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	switch o.gen {
	case "auto", "wrk":
		if p, err := exec.LookPath("wrk"); err == nil {
			g.wrkBin = p
		} else if o.gen == "wrk" {
			return nil, errors.New("-gen wrk: wrk not found (apt-get install -y wrk)")
		} else {
			rep.note("wrk not installed: bench/load measures throughput too (apt-get install -y wrk)")
		}
	case "load":
	default:
		return nil, fmt.Errorf("-gen must be auto, wrk or load, got %q", o.gen)
	}
	if g.wrkBin != "" {
		if err := g.writeWrkScript(); err != nil {
			return nil, err
		}
		rep.ThroughputTool = "wrk"
	}

	if err := e.startUpstream(o.size, o.upLatency); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	scs := startScenarios(e, names, rep, log)
	active := slices.DeleteFunc(slices.Clone(scs), func(sc *scenario) bool { return sc.skip != "" })
	if len(active) == 0 {
		return nil, errors.New("no scenario could start")
	}
	sum := map[string]*summary{}
	for _, sc := range scs {
		sum[sc.name] = rep.add(sc)
	}

	// Warm-up: connections, caches, buckets; it also sizes the latency
	// phase's rate.
	slowest := math.Inf(1)
	for _, sc := range active {
		ph, err := g.run(ctx, sc, "warmup", "load", o.conns, o.warmup, 0)
		if err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", sc.name, err)
		}
		sum[sc.name].Phases = append(sum[sc.name].Phases, ph)
		logf(log, "warm-up     %-13s %8.0f req/s", sc.name, ph.RPS)
		// Handshake scenarios measure connection setup: their rate says
		// nothing about the rate the latency phase can hold.
		if sc.name != scDirect && sc.perConn == 0 {
			slowest = min(slowest, ph.RPS)
		}
	}
	rate := o.rate
	if rate <= 0 {
		if math.IsInf(slowest, 1) {
			slowest = sum[active[0].name].Phases[0].RPS
		}
		rate = max(100, math.Floor(slowest*o.rateFraction/100)*100)
	}
	rep.LatencyRate = rate

	thrTool := "load"
	if g.wrkBin != "" {
		thrTool = "wrk"
	}
	for r := 1; r <= o.rounds; r++ {
		for _, sc := range active {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			tool := thrTool
			if sc.perConn > 0 {
				// wrk keeps its connections alive.
				tool = "load"
			}
			ph, err := g.run(ctx, sc, "throughput", tool, o.conns, o.duration, 0)
			if err != nil {
				return nil, fmt.Errorf("%s throughput: %w", sc.name, err)
			}
			if sc.perConn > 0 {
				// No latency phase: its rate is sized for keep-alive
				// connections.
				sum[sc.name].Phases = append(sum[sc.name].Phases, ph)
				logf(log, "round %d/%d %-13s %8.0f req/s  proxy cpu %3.0f%%  %s  (a new connection per request)  errors %d",
					r, o.rounds, sc.name, ph.RPS, ph.ProxyCPU, describeBusy(ph.CPUBusy), ph.Non2xx+ph.Errors)
				continue
			}
			lat, err := g.run(ctx, sc, "latency", "load", o.conns, o.latencyDur, rate)
			if err != nil {
				return nil, fmt.Errorf("%s latency: %w", sc.name, err)
			}
			sum[sc.name].Phases = append(sum[sc.name].Phases, ph, lat)
			logf(log, "round %d/%d %-13s %8.0f req/s  proxy cpu %3.0f%%  %s | at %.0f req/s: p50 %.3f p99 %.3f p99.9 %.3f ms  errors %d",
				r, o.rounds, sc.name, ph.RPS, ph.ProxyCPU, describeBusy(ph.CPUBusy), rate,
				lat.Latency.P50, lat.Latency.P99, lat.Latency.P999, ph.Non2xx+ph.Errors+lat.Non2xx+lat.Errors)
		}
	}
	if o.connsHigh > 0 {
		for _, sc := range active {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if sc.perConn > 0 {
				continue
			}
			ph, err := g.run(ctx, sc, "conns", "load", o.connsHigh, o.highDur, 0)
			if err != nil {
				return nil, fmt.Errorf("%s %d connections: %w", sc.name, o.connsHigh, err)
			}
			sum[sc.name].Phases = append(sum[sc.name].Phases, ph)
			logf(log, "%d conns  %-13s %8.0f req/s  rss %.1f MiB", o.connsHigh, sc.name, ph.RPS, ph.ProxyRSSMiB)
		}
	}
	for _, sc := range active {
		if sc.proc != nil && sc.proc.exited() {
			rep.note(fmt.Sprintf("%s exited during the run: %v", sc.name, sc.proc.err))
		}
	}
	e.stopAll()

	if o.micro {
		logf(log, "micro-benchmark: go -C bench test -bench Chain ./chain")
		m, err := runMicro(ctx, o.root)
		if err != nil {
			rep.note("micro-benchmark failed: " + err.Error())
		}
		rep.Micro = m
	}
	rep.finish()
	return rep, nil
}

// startScenarios starts what each scenario needs; a scenario that cannot
// run is marked skipped with the reason, the others go on.
func startScenarios(e *env, names []string, rep *report, log io.Writer) []*scenario {
	var scs []*scenario
	for _, name := range names {
		sc := &scenario{name: name}
		if handshakeScenarios[name] {
			sc.perConn = 1
		}
		scs = append(scs, sc)
		var err error
		if tlsScenarios[name] {
			if err = e.tlsCertificate(); err != nil {
				sc.skip = "failed to make the TLS certificate: " + err.Error()
				continue
			}
		}
		switch name {
		case scDirect:
			sc.url = "http://" + e.upstream + benchPath
		case scFasthttpMin:
			err = e.startFasthttpMin(sc)
		case scPassthrough, scChainMemory, scChainTLS, scChainTLSHandshake:
			err = e.startGateway(sc)
		case scChainRedis, scChainRedisLease:
			redisBin, lerr := exec.LookPath("redis-server")
			if lerr != nil {
				sc.skip = "redis-server not installed (apt-get install -y redis-server)"
				break
			}
			if e.redis == "" {
				if err = e.startRedis(redisBin); err != nil {
					break
				}
			}
			err = e.startGateway(sc)
		case scNginx, scNginxTLS, scNginxTLSHandshake:
			bin, lerr := lookPath("nginx", "/usr/sbin/nginx")
			if lerr != nil {
				sc.skip = "nginx not installed (apt-get install -y nginx)"
				break
			}
			err = e.startNginx(sc, bin)
		case scHAProxyJWT:
			bin, lerr := lookPath("haproxy", "/usr/sbin/haproxy")
			if lerr != nil {
				sc.skip = "haproxy not installed (apt-get install -y haproxy; 2.5 or later for jwt_verify)"
				break
			}
			err = e.startHAProxy(sc, bin)
		}
		if err != nil {
			sc.skip = "failed to start: " + firstLine(err.Error())
			logf(log, "%s: %v", name, err)
		}
		if sc.skip != "" {
			rep.note(fmt.Sprintf("%s skipped: %s", name, sc.skip))
			logf(log, "%s skipped: %s", name, sc.skip)
			continue
		}
		logf(log, "%-13s ready at %s", name, sc.url)
	}
	return scs
}

// lookPath finds name on PATH or at fallback (sbin is often not on a
// user's PATH).
func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if st, err := os.Stat(fallback); err == nil && !st.IsDir() {
		return fallback, nil
	}
	return "", exec.ErrNotFound
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// randomSecret is a fresh HS256 secret for the run (hex, so HAProxy's
// configuration can quote it as is).
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
