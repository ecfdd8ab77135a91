// Command accuracy measures how closely a rate limit shared by several
// gatewayd instances on one Redis holds, with ratelimit sync: exact and
// sync: lease side by side (SPEC §15): it starts a redis-server, a
// loopback upstream and -instances gatewayd processes, offers more load
// than the limit to all of them for -duration, once per mode, and prints
// how many requests were admitted against what an exact token bucket
// allows over the same time.
//
//	bin/bench/accuracy -gatewayd bin/gatewayd -limit 100 -period 1s -duration 60s
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gatewayd/gatewayd/bench/internal/upstreamsrv"
	"github.com/gatewayd/gatewayd/pkg/store/lease"
	"github.com/valyala/fasthttp"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are the command line.
type options struct {
	gatewayd  string
	redis     string
	instances int
	limit     int64
	period    time.Duration
	burst     int64
	duration  time.Duration
	rps       float64
	modes     string
	keep      bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("accuracy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.gatewayd, "gatewayd", "bin/gatewayd", "gatewayd binary")
	fs.StringVar(&o.redis, "redis-server", "redis-server", "redis-server binary")
	fs.IntVar(&o.instances, "instances", 3, "gatewayd instances sharing the limit")
	fs.Int64Var(&o.limit, "limit", 100, "ratelimit limit: tokens per period, shared by every instance")
	fs.DurationVar(&o.period, "period", time.Second, "ratelimit period")
	fs.Int64Var(&o.burst, "burst", 0, "ratelimit burst (0: the limit)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "load per mode")
	fs.Float64Var(&o.rps, "rps", 0, "offered requests per second over all instances (0: 4 × the limit's rate)")
	fs.StringVar(&o.modes, "modes", "exact,lease", "sync modes to run, in order")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configs, logs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.burst == 0 {
		o.burst = o.limit
	}
	if o.instances < 1 || o.limit < 1 || o.burst < 1 || o.period < time.Millisecond || o.duration <= 0 {
		return nil, errors.New("accuracy: -instances, -limit, -burst, -period and -duration must be positive")
	}
	if o.rps == 0 {
		o.rps = 4 * float64(o.limit) / o.period.Seconds()
	}
	for _, m := range strings.Split(o.modes, ",") {
		if m != "exact" && m != "lease" {
			return nil, fmt.Errorf("accuracy: unknown mode %q in -modes (exact or lease)", m)
		}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, err)
		return 2
	}
	results, err := measure(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "accuracy:", err)
		return 1
	}
	report(stdout, o, results)
	return 0
}

// result is one mode's run.
type result struct {
	mode                    string
	elapsed                 time.Duration
	sent, admitted, limited int64
	unavailable, failed     int64
	perInstance             []int64
	firstFailed             string
}

// measure runs each mode against fresh gatewayd instances on one Redis.
func measure(o *options, log io.Writer) ([]result, error) {
	gatewayd, err := filepath.Abs(o.gatewayd)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(gatewayd); err != nil {
		return nil, fmt.Errorf("%w (bench/run.sh or go build -o bin/ ./cmd/gatewayd builds it)", err)
	}
	redisBin, err := exec.LookPath(o.redis)
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	dir, err := os.MkdirTemp("", "gatewayd-accuracy-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(log, "working directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			stop(p)
		}
	}()

	// The upstream answers 200 to everything.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := upstreamsrv.Server(upstreamsrv.Options{})
	go func() { _ = up.Serve(ln) }()
	defer func() { _ = up.Shutdown() }()

	redisPort, err := freePort()
	if err != nil {
		return nil, err
	}
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)
	rc, err := start(dir, "redis", exec.Command(redisBin, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"))
	if err != nil {
		return nil, err
	}
	procs = append(procs, rc)
	if err := waitTCP(redisAddr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}

	var out []result
	for _, mode := range strings.Split(o.modes, ",") {
		var addrs []string
		var gws []*exec.Cmd
		for i := 0; i < o.instances; i++ {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			admin, err := freePort()
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("%s-%d", mode, i)
			cfg := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(cfg, []byte(gatewayYAML(o, mode, port, admin, redisAddr, ln.Addr().String())), 0o600); err != nil {
				return nil, err
			}
			gw, err := start(dir, name, exec.Command(gatewayd, "-config", cfg))
			if err != nil {
				return nil, err
			}
			procs = append(procs, gw)
			gws = append(gws, gw)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			if err := waitTCP(addr, 20*time.Second); err != nil {
				b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
				return nil, fmt.Errorf("gatewayd %s: %w\n%s", name, err, b)
			}
			addrs = append(addrs, addr)
		}
		fmt.Fprintf(log, "%s: %d instances up, offering %.0f req/s for %v\n", mode, o.instances, o.rps, o.duration)
		r := load(o, mode, addrs)
		out = append(out, r)
		// Stop this mode's instances (they give their leases back) before
		// the next mode runs on its own bucket.
		for _, gw := range gws {
			stop(gw)
		}
	}
	return out, nil
}

// bucketName is the bucket of a mode: each mode starts from a full one.
func bucketName(mode string) string { return "accuracy-" + mode }

// gatewayYAML is one instance's configuration: one route keyed on the
// route, so every request of every instance takes from one bucket. A store
// call that fails or times out is answered 503 (on_store_error: deny), so
// that only what the bucket admitted is counted as admitted.
func gatewayYAML(o *options, mode string, port, admin int, redisAddr, upstream string) string {
	return fmt.Sprintf(`version: 1
listen: "127.0.0.1:%d"
admin: { listen: "127.0.0.1:%d" }
server: { max_connections_per_ip: 0 }
log: { level: warn, format: json, access_log: false }
redis: { addrs: ["%s"] }
upstreams:
  up: { targets: ["http://%s"], retries: 0 }
routes:
  - name: accuracy
    match: { path_prefix: / }
    upstream: up
    plugins:
      - ratelimit: { key: route, bucket: %s, limit: %d, period: %s, burst: %d, sync: %s, headers: off, on_store_error: deny }
`, port, admin, redisAddr, upstream, bucketName(mode), o.limit, o.period, o.burst, mode)
}

// load offers o.rps requests per second, spread evenly over the
// instances, for o.duration, and counts the answers.
func load(o *options, mode string, addrs []string) result {
	r := result{mode: mode, perInstance: make([]int64, len(addrs))}
	var sent, admitted, limited, unavailable, failed atomic.Int64
	var firstFailed atomic.Value
	perInst := make([]atomic.Int64, len(addrs))
	interval := time.Duration(float64(time.Second) * float64(len(addrs)) / o.rps)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(o.duration)
	for i, addr := range addrs {
		hc := &fasthttp.HostClient{Addr: addr, MaxConns: 256, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Stagger the instances within one interval.
			next := start.Add(interval * time.Duration(i) / time.Duration(len(addrs)))
			var inflight sync.WaitGroup
			for next.Before(end) {
				time.Sleep(time.Until(next))
				next = next.Add(interval)
				inflight.Add(1)
				sent.Add(1)
				go func() {
					defer inflight.Done()
					req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
					defer fasthttp.ReleaseRequest(req)
					defer fasthttp.ReleaseResponse(resp)
					req.SetRequestURI("http://" + addr + "/accuracy")
					switch err := hc.DoTimeout(req, resp, 5*time.Second); {
					case err != nil:
						failed.Add(1)
						firstFailed.CompareAndSwap(nil, err.Error())
					case resp.StatusCode() == fasthttp.StatusOK:
						admitted.Add(1)
						perInst[i].Add(1)
					case resp.StatusCode() == fasthttp.StatusTooManyRequests:
						limited.Add(1)
					case resp.StatusCode() == fasthttp.StatusServiceUnavailable:
						unavailable.Add(1)
					default:
						failed.Add(1)
						firstFailed.CompareAndSwap(nil, "status "+strconv.Itoa(resp.StatusCode()))
					}
				}()
			}
			inflight.Wait()
		}(i)
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.sent, r.admitted, r.limited = sent.Load(), admitted.Load(), limited.Load()
	r.unavailable, r.failed = unavailable.Load(), failed.Load()
	for i := range perInst {
		r.perInstance[i] = perInst[i].Load()
	}
	if v, ok := firstFailed.Load().(string); ok {
		r.firstFailed = v
	}
	return r
}

// maxBatch is the largest lease an instance takes for the limit: what
// pkg/store/lease sizes batches to at most.
func maxBatch(o *options) int64 {
	byRate := int64(float64(o.limit) * float64(lease.DefaultWindow) / float64(o.period))
	return min(int64(lease.DefaultMaxBatch), o.burst, max(byRate, 1))
}

// report prints the modes side by side with the exact bucket's bound.
func report(w io.Writer, o *options, rs []result) {
	fmt.Fprintf(w, "limit %d per %v, burst %d, %d instances on one Redis, %.0f req/s offered for %v per mode\n",
		o.limit, o.period, o.burst, o.instances, o.rps, o.duration)
	fmt.Fprintf(w, "exact bucket bound over the run: burst + limit × elapsed / period; lease lower bound: that − instances × max batch (%d × %d)\n\n",
		o.instances, maxBatch(o))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\telapsed\tsent\tadmitted\t429\t503\terrors\texact bound\tadmitted/bound\tlease lower bound\tper instance\t")
	for _, r := range rs {
		bound := o.burst + int64(r.elapsed.Seconds()*float64(o.limit)/o.period.Seconds())
		lo := bound - int64(o.instances)*maxBatch(o)
		per := make([]string, len(r.perInstance))
		for i, n := range r.perInstance {
			per[i] = strconv.FormatInt(n, 10)
		}
		fmt.Fprintf(tw, "%s\t%.1fs\t%d\t%d\t%d\t%d\t%d\t%d\t%.4f\t%d\t%s\t\n", r.mode, r.elapsed.Seconds(), r.sent, r.admitted,
			r.limited, r.unavailable, r.failed, bound, float64(r.admitted)/float64(bound), lo, strings.Join(per, "/"))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "503: the store call failed or exceeded store_timeout (on_store_error: deny), so the bucket did not decide")
	for _, r := range rs {
		if r.failed > 0 {
			fmt.Fprintf(w, "%s: %d requests failed (first: %s)\n", r.mode, r.failed, r.firstFailed)
		}
	}
}

// start starts cmd with its output in dir/<name>.log.
func start(dir, name string, cmd *exec.Cmd) (*exec.Cmd, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = f, f, dir
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		f.Close()
	}()
	return cmd, nil
}

// stop sends SIGTERM and waits for the process to go, killing it after a
// grace period.
func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
