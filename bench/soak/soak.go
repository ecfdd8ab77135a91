package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/bench/internal/upstreamsrv"
	"github.com/gatewayd/gatewayd/bench/loadgen"
)

// config is one soak run.
type config struct {
	Gatewayd        string
	Duration        time.Duration
	Interval        time.Duration
	Connections     int
	Rate            float64
	RequestsPerConn int
	Users           int
	// RedisServer, when set, is the redis-server binary: the chain runs on
	// a Redis the soak starts; otherwise on the in-process store.
	RedisServer string
	Limits      limits
	// Log receives one line per sample.
	Log io.Writer
}

// limits say how much growth over the second half of the run is growth
// without bound: a trend fails when its slope exceeds the per-minute
// maximum and the growth it implies over the second half exceeds the
// minimum (so short runs are not failed on noise).
type limits struct {
	RSSPerMin        float64
	GoroutinesPerMin float64
	FDsPerMin        float64
	MinRSSMiB        float64
	MinGoroutines    float64
	MinFDs           float64
}

var defaultLimits = limits{
	RSSPerMin: 1, GoroutinesPerMin: 10, FDsPerMin: 10,
	MinRSSMiB: 2, MinGoroutines: 20, MinFDs: 20,
}

// sample is one observation of the gateway.
type sample struct {
	T          float64 `json:"t_s"`
	RSSMiB     float64 `json:"rss_mib"`
	Goroutines int     `json:"goroutines"`
	FDs        int     `json:"fds"`
}

// trend is the linear fit of one quantity over the second half of the run.
type trend struct {
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	PerMin    float64 `json:"slope_per_min"`
	MaxPerMin float64 `json:"max_slope_per_min"`
	// Growth is the slope times the second half's length.
	Growth    float64 `json:"growth"`
	MinGrowth float64 `json:"min_growth"`
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	Pass      bool    `json:"pass"`
}

// result is what a soak found.
type result struct {
	Started  time.Time       `json:"started"`
	Duration float64         `json:"duration_s"`
	Interval float64         `json:"interval_s"`
	Store    string          `json:"store"`
	Samples  []sample        `json:"samples"`
	Trends   []trend         `json:"trends"`
	Load     *loadgen.Result `json:"load"`
	Problems []string        `json:"problems,omitempty"`
	Pass     bool            `json:"pass"`
}

const soakConfig = `version: 1
listen: "127.0.0.1:{{PORT}}"
admin: { listen: "127.0.0.1:{{ADMIN}}" }
# Every load connection comes from one loopback address.
server: { max_connections_per_ip: 0 }
log: { level: warn, format: json, access_log: false }
{{REDIS}}
upstreams:
  soak: { targets: ["http://{{UPSTREAM}}"], timeout: 10s, retries: 0 }
plugins:
  auth-jwt:
    type: jwt
    algorithms: [HS256]
    secret: "{{SECRET}}"
    issuer: gatewayd-auth
    audience: api
    forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email }
routes:
  - name: soak
    match: { path_prefix: /soak/ }
    upstream: soak
    plugins:
      - request-id
      - auth-jwt
      - blacklist
      - rbac: { roles: [user, admin] }
      - ratelimit: { key: user, limit: 1000000, period: 1s }
`

// errGatewayExited is reported when gatewayd dies during the soak.
var errGatewayExited = errors.New("gatewayd exited")

// soak runs the gateway under steady load for cfg.Duration, sampling it
// every cfg.Interval, and judges the trends.
func soak(ctx context.Context, cfg config) (*result, error) {
	dir, err := os.MkdirTemp("", "gatewayd-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	up := upstreamsrv.Server(upstreamsrv.Options{})
	go func() { _ = up.Serve(ln) }()
	defer func() { _ = up.Shutdown() }()

	res := &result{Started: time.Now(), Duration: cfg.Duration.Seconds(), Interval: cfg.Interval.Seconds(), Store: "memory"}
	redisSection := ""
	if cfg.RedisServer != "" {
		addr, stop, err := startRedis(cfg.RedisServer, dir)
		if err != nil {
			return nil, err
		}
		defer stop()
		redisSection = `redis: { addrs: ["` + addr + `"] }`
		res.Store = "redis"
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	hexSecret := hex.EncodeToString(secret)
	port, admin, err := twoPorts()
	if err != nil {
		return nil, err
	}
	text := strings.NewReplacer("{{PORT}}", strconv.Itoa(port), "{{ADMIN}}", strconv.Itoa(admin),
		"{{UPSTREAM}}", ln.Addr().String(), "{{SECRET}}", hexSecret, "{{REDIS}}", redisSection).Replace(soakConfig)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(cfg.Gatewayd)
	if err != nil {
		return nil, err
	}
	gw := exec.Command(bin, "-config", cfgPath)
	gw.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "gatewayd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	gw.Stdout, gw.Stderr = logf, logf
	if err := gw.Start(); err != nil {
		return nil, fmt.Errorf("start gatewayd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = gw.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			_ = gw.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = gw.Process.Kill()
				<-exited
			}
		}
	}()
	adminURL := "http://127.0.0.1:" + strconv.Itoa(admin)
	if err := waitReady(adminURL+"/readyz", exited, 30*time.Second); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tailFile(logf.Name()))
	}

	toks, err := loadgen.MintTokens(loadgen.TokenOptions{Secret: []byte(hexSecret), Issuer: "gatewayd-auth", Audience: "api",
		Role: "user", Users: cfg.Users, TTL: cfg.Duration + time.Hour})
	if err != nil {
		return nil, err
	}
	loadDone := make(chan struct{})
	var loadErr error
	go func() {
		defer close(loadDone)
		res.Load, loadErr = loadgen.Run(ctx, loadgen.Options{
			URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/soak/hello", Tokens: toks,
			Connections: cfg.Connections, Duration: cfg.Duration, Rate: cfg.Rate,
			RequestsPerConn: cfg.RequestsPerConn, Timeout: 10 * time.Second,
		})
	}()

	pid := gw.Process.Pid
	start := time.Now()
	take := func() {
		s := sample{T: time.Since(start).Seconds(), RSSMiB: rssMiB(pid), FDs: countFDs(pid), Goroutines: goroutines(adminURL + "/metrics")}
		res.Samples = append(res.Samples, s)
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "[%5.0fs] rss %6.1f MiB  goroutines %5d  fds %5d\n", s.T, s.RSSMiB, s.Goroutines, s.FDs)
		}
	}
	take()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
sampling:
	for {
		select {
		case <-tick.C:
			take()
		case <-loadDone:
			break sampling
		case <-exited:
			<-loadDone
			res.Problems = append(res.Problems, errGatewayExited.Error()+": "+tailFile(logf.Name()))
			break sampling
		}
	}
	if loadErr != nil {
		return nil, loadErr
	}
	judge(res, cfg)
	return res, nil
}

// judge fits the second half of the samples and sets the verdict.
func judge(res *result, cfg config) {
	half := res.Duration / 2
	var t, rss, gor, fds []float64
	for _, s := range res.Samples {
		if s.T+1e-9 < half {
			continue
		}
		t = append(t, s.T)
		rss = append(rss, s.RSSMiB)
		gor = append(gor, float64(s.Goroutines))
		fds = append(fds, float64(s.FDs))
	}
	if len(t) < 3 {
		res.Problems = append(res.Problems, fmt.Sprintf("only %d samples in the second half: use a longer -duration or a shorter -interval", len(t)))
	} else {
		halfMin := (t[len(t)-1] - t[0]) / 60
		l := cfg.Limits
		res.Trends = []trend{
			fit("RSS", "MiB", t, rss, l.RSSPerMin, l.MinRSSMiB, halfMin),
			fit("goroutines", "", t, gor, l.GoroutinesPerMin, l.MinGoroutines, halfMin),
			fit("open FDs", "", t, fds, l.FDsPerMin, l.MinFDs, halfMin),
		}
		for _, tr := range res.Trends {
			if !tr.Pass {
				res.Problems = append(res.Problems, fmt.Sprintf("%s grows %.2f%s per minute over the second half (%+.1f in all; limits %.2f/min and %.0f)",
					tr.Name, tr.PerMin, unitSuffix(tr.Unit), tr.Growth, tr.MaxPerMin, tr.MinGrowth))
			}
		}
	}
	if l := res.Load; l != nil {
		if bad := l.Errors + l.Non2xx; l.Requests == 0 || float64(bad) > 0.001*float64(l.Requests+l.Errors) {
			res.Problems = append(res.Problems, fmt.Sprintf("load: %d responses, %d non-2xx, %d transport errors", l.Requests, l.Non2xx, l.Errors))
		}
	}
	res.Pass = len(res.Problems) == 0
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// fit returns the least-squares slope of ys over ts, per minute, and the
// verdict against the limits.
func fit(name, unit string, ts, ys []float64, maxPerMin, minGrowth, halfMin float64) trend {
	slope := slopePerSecond(ts, ys) * 60
	tr := trend{Name: name, Unit: unit, PerMin: slope, MaxPerMin: maxPerMin, Growth: slope * halfMin,
		MinGrowth: minGrowth, First: ys[0], Last: ys[len(ys)-1]}
	tr.Pass = !(slope > maxPerMin && tr.Growth > minGrowth)
	return tr
}

// slopePerSecond is the ordinary least-squares slope of ys against ts.
func slopePerSecond(ts, ys []float64) float64 {
	n := float64(len(ts))
	if n < 2 {
		return 0
	}
	var st, sy float64
	for i := range ts {
		st += ts[i]
		sy += ys[i]
	}
	mt, my := st/n, sy/n
	var num, den float64
	for i := range ts {
		num += (ts[i] - mt) * (ys[i] - my)
		den += (ts[i] - mt) * (ts[i] - mt)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func twoPorts() (int, int, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

func startRedis(bin, dir string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("redis-server on %s did not start", addr)
}

func waitReady(url string, exited <-chan struct{}, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return errGatewayExited
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("gatewayd not ready after %v", timeout)
}

func rssMiB(pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

func countFDs(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// goroutines reads go_goroutines from the admin /metrics (0 when it cannot).
func goroutines(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil && !math.IsNaN(n) {
				return int(n)
			}
		}
	}
	return 0
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
