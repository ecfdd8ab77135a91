// Command wsbench measures gatewayd's WebSocket tunnels against the SPEC
// §15 budgets: the echo round trip through the gateway next to the same
// round trip straight to the upstream (p50 and p99, interleaved rounds),
// and the gateway's resident set with many idle tunnels open.
//
//	wsbench -gatewayd bin/gatewayd -tunnels 10000
//
// It starts the echo upstream (itself, with -role upstream) and gatewayd
// as child processes, each with its own file-descriptor budget, pinned
// like benchrun's scenarios (gatewayd on -proxy-cpu, the rest on
// -load-cpu) when taskset is installed. An idle tunnel costs the gateway
// two descriptors: the soft limit is raised to the hard one, and the
// tunnel count is lowered to what that allows, with a note.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	gatewayd   string
	tunnels    int
	roundTrips int
	rounds     int
	size       int
	proxyCPU   string
	loadCPU    string
	noPin      bool
	jsonOut    string
	keep       bool
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "internal: \"upstream\" runs the echo upstream on -addr")
	addr := fs.String("addr", "127.0.0.1:0", "internal: the upstream's listen address")
	var o options
	fs.StringVar(&o.gatewayd, "gatewayd", "bin/gatewayd", "gatewayd binary")
	fs.IntVar(&o.tunnels, "tunnels", 10000, "idle tunnels held for the memory phase")
	fs.IntVar(&o.roundTrips, "round-trips", 5000, "echo round trips per latency round and target")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved latency rounds (direct, gateway, ...)")
	fs.IntVar(&o.size, "size", 64, "message size in bytes")
	fs.StringVar(&o.proxyCPU, "proxy-cpu", "1", "CPU for gatewayd")
	fs.StringVar(&o.loadCPU, "load-cpu", "0", "CPU for the client and the upstream")
	fs.BoolVar(&o.noPin, "no-pin", false, "do not pin processes")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (config, logs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raiseNoFile()
	if *role == "upstream" {
		if err := serveUpstream(*addr, stdout); err != nil {
			fmt.Fprintln(stderr, "wsbench upstream:", err)
			return 1
		}
		return 0
	}
	res, err := bench(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wsbench:", err)
		return 1
	}
	res.print(stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "wsbench:", err)
			return 1
		}
	}
	return 0
}

// raiseNoFile lifts the soft descriptor limit to the hard one; children
// inherit it.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Max
}

// serveUpstream is the echo upstream: every message comes back as sent.
// It prints its address on stdout once it listens.
func serveUpstream(addr string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ln.Addr().String())
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// results are what one run measured.
type results struct {
	Rounds        int       `json:"rounds"`
	RoundTrips    int       `json:"round_trips_per_round"`
	Size          int       `json:"message_bytes"`
	DirectP50us   float64   `json:"direct_p50_us"`
	DirectP99us   float64   `json:"direct_p99_us"`
	GatewayP50us  float64   `json:"gateway_p50_us"`
	GatewayP99us  float64   `json:"gateway_p99_us"`
	DirectRounds  []latency `json:"direct_rounds"`
	GatewayRounds []latency `json:"gateway_rounds"`

	TunnelsWanted     int      `json:"tunnels_wanted"`
	Tunnels           int      `json:"tunnels"`
	RSSBeforeMiB      float64  `json:"rss_before_mib"`
	RSSTunnelsMiB     float64  `json:"rss_with_tunnels_mib"`
	RSSPerTunnelKiB   float64  `json:"rss_per_tunnel_kib"`
	RSSAt10000MiB     float64  `json:"rss_at_10000_tunnels_mib"`
	GoroutinesBefore  int      `json:"goroutines_before"`
	GoroutinesTunnels int      `json:"goroutines_with_tunnels"`
	OpenSeconds       float64  `json:"open_seconds"`
	Notes             []string `json:"notes,omitempty"`
}

type latency struct {
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "echo round trip, %d B messages, %d rounds of %d:\n", r.Size, r.Rounds, r.RoundTrips)
	fmt.Fprintf(w, "  %-8s p50 %7.1f µs  p99 %7.1f µs\n", "direct", r.DirectP50us, r.DirectP99us)
	fmt.Fprintf(w, "  %-8s p50 %7.1f µs  p99 %7.1f µs\n", "gateway", r.GatewayP50us, r.GatewayP99us)
	d := r.GatewayP50us - r.DirectP50us
	verdict := "PASS"
	if d > 200 {
		verdict = "MISS"
	}
	fmt.Fprintf(w, "  gateway - direct at p50: %+.1f µs (budget +200 µs): %s\n", d, verdict)
	fmt.Fprintf(w, "idle tunnels: %d open in %.1fs\n", r.Tunnels, r.OpenSeconds)
	fmt.Fprintf(w, "  gateway RSS %.1f MiB before, %.1f MiB with the tunnels (%.1f KiB per tunnel)\n",
		r.RSSBeforeMiB, r.RSSTunnelsMiB, r.RSSPerTunnelKiB)
	fmt.Fprintf(w, "  goroutines %d before, %d with the tunnels\n", r.GoroutinesBefore, r.GoroutinesTunnels)
	verdict = "PASS"
	if r.RSSAt10000MiB >= 300 {
		verdict = "MISS"
	}
	at := "at"
	if r.Tunnels != 10000 {
		at = "extrapolated to"
	}
	fmt.Fprintf(w, "  RSS %s 10 000 tunnels: %.1f MiB (budget < 300 MiB): %s\n", at, r.RSSAt10000MiB, verdict)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// child is a started child process.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (o options) command(cpu, bin string, args ...string) *exec.Cmd {
	if o.noPin {
		return exec.Command(bin, args...)
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return exec.Command(bin, args...)
	}
	return exec.Command(ts, append([]string{"-c", cpu, bin}, args...)...)
}

func start(cmd *exec.Cmd, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	return c, nil
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

const gatewayYAML = `version: 1
listen: "127.0.0.1:%d"
admin: { listen: "127.0.0.1:%d" }
server: { shutdown_timeout: 5s, max_connections_per_ip: 0 }   # every tunnel comes from 127.0.0.1
log: { level: warn, access_log: false }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: ws
    match: { path_prefix: / }
    upstream: echo
    websocket: true
`

func bench(o options, stderr io.Writer) (*results, error) {
	res := &results{Rounds: o.rounds, RoundTrips: o.roundTrips, Size: o.size, TunnelsWanted: o.tunnels}
	if hard := raiseNoFile(); hard > 0 {
		// The gateway holds two descriptors per tunnel, plus its listeners,
		// the admin connection and the runtime's own.
		if most := int(hard-64) / 2; o.tunnels > most {
			res.Notes = append(res.Notes, fmt.Sprintf("the descriptor limit (%d) allows %d tunnels, not %d: RSS is extrapolated linearly", hard, most, o.tunnels))
			o.tunnels = most
		}
	}
	dir, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(stderr, "work directory:", dir)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}

	// The upstream prints its address on stdout.
	upCmd := o.command(o.loadCPU, self, "-role", "upstream")
	pr, pw := io.Pipe()
	upCmd.Stdout = pw
	up, err := start(upCmd, filepath.Join(dir, "upstream.log"))
	if err != nil {
		return nil, err
	}
	defer up.stop()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	upAddr := strings.TrimSpace(line)

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(gatewayYAML, port, adminPort, upAddr)), 0o600); err != nil {
		return nil, err
	}
	gwCmd := o.command(o.proxyCPU, o.gatewayd, "-config", cfg)
	gwCmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	gw, err := start(gwCmd, filepath.Join(dir, "gatewayd.log"))
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	gwAddr := "127.0.0.1:" + strconv.Itoa(port)
	admin := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	if err := waitReady(admin+"/readyz", gw); err != nil {
		return nil, err
	}

	// Latency: warm both paths, then interleave.
	for _, target := range []string{upAddr, gwAddr} {
		if _, err := echoRounds(target, 500, o.size); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", target, err)
		}
	}
	for i := 0; i < o.rounds; i++ {
		d, err := echoRounds(upAddr, o.roundTrips, o.size)
		if err != nil {
			return nil, fmt.Errorf("direct: %w", err)
		}
		g, err := echoRounds(gwAddr, o.roundTrips, o.size)
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		res.DirectRounds = append(res.DirectRounds, d)
		res.GatewayRounds = append(res.GatewayRounds, g)
		fmt.Fprintf(stderr, "round %d: direct p50 %.1f µs p99 %.1f µs; gateway p50 %.1f µs p99 %.1f µs\n", i+1, d.P50us, d.P99us, g.P50us, g.P99us)
	}
	res.DirectP50us, res.DirectP99us = medians(res.DirectRounds)
	res.GatewayP50us, res.GatewayP99us = medians(res.GatewayRounds)

	// Memory: idle tunnels.
	pid := gw.cmd.Process.Pid
	time.Sleep(time.Second)
	res.RSSBeforeMiB = rssMiB(pid)
	res.GoroutinesBefore = goroutines(admin)
	t0 := time.Now()
	conns, err := openTunnels(gwAddr, o.tunnels, o.size, stderr)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	res.OpenSeconds = time.Since(t0).Seconds()
	res.Tunnels = len(conns)
	// Let the runtime settle (the scavenger returns freed spans), then
	// take the highest of a few samples.
	time.Sleep(3 * time.Second)
	for range 5 {
		res.RSSTunnelsMiB = max(res.RSSTunnelsMiB, rssMiB(pid))
		time.Sleep(200 * time.Millisecond)
	}
	res.GoroutinesTunnels = goroutines(admin)
	res.RSSPerTunnelKiB = (res.RSSTunnelsMiB - res.RSSBeforeMiB) * 1024 / float64(res.Tunnels)
	res.RSSAt10000MiB = res.RSSBeforeMiB + res.RSSPerTunnelKiB*10000/1024
	return res, nil
}

func waitReady(url string, gw *child) error {
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-gw.done:
			return errors.New("gatewayd exited before it was ready (see its log with -keep)")
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("gatewayd not ready after 30s")
}

var dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}

// echoRounds sends n messages one at a time on one connection and returns
// the round-trip percentiles.
func echoRounds(addr string, n, size int) (latency, error) {
	c, _, err := dialer.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		return latency{}, err
	}
	defer c.Close()
	msg := make([]byte, size)
	samples := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			return latency{}, err
		}
		if _, _, err := c.ReadMessage(); err != nil {
			return latency{}, err
		}
		samples = append(samples, time.Since(t))
	}
	slices.Sort(samples)
	us := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))].Nanoseconds()) / 1e3
	}
	return latency{P50us: us(0.50), P99us: us(0.99)}, nil
}

func medians(ls []latency) (p50, p99 float64) {
	var a, b []float64
	for _, l := range ls {
		a = append(a, l.P50us)
		b = append(b, l.P99us)
	}
	slices.Sort(a)
	slices.Sort(b)
	return a[len(a)/2], b[len(b)/2]
}

// openTunnels opens n tunnels, each carrying one echo, and leaves them idle.
func openTunnels(addr string, n, size int, stderr io.Writer) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	msg := make([]byte, size)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, _, err := dialer.Dial("ws://"+addr+"/idle/"+strconv.Itoa(i), nil)
				if err == nil {
					if err = c.WriteMessage(websocket.BinaryMessage, msg); err == nil {
						_, _, err = c.ReadMessage()
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("tunnel %d: %w", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
		if (i+1)%2000 == 0 {
			fmt.Fprintf(stderr, "%d tunnels open\n", i+1)
		}
	}
	close(next)
	wg.Wait()
	out := conns[:0]
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// goroutines reads go_goroutines from the admin /metrics.
func goroutines(metricsBase string) int {
	resp, err := http.Get(metricsBase + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
