package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/bench/loadgen"
)

// phase is one load run against one scenario and what was sampled on the
// proxy meanwhile.
type phase struct {
	Kind        string               `json:"kind"` // warmup, throughput, latency, conns
	Tool        string               `json:"tool"`
	Connections int                  `json:"connections"`
	DurationSec float64              `json:"duration_s"`
	Rate        float64              `json:"rate,omitempty"`
	RPS         float64              `json:"rps"`
	Requests    uint64               `json:"requests"`
	Non2xx      uint64               `json:"non_2xx"`
	Errors      uint64               `json:"errors"`
	Status      map[string]uint64    `json:"status,omitempty"`
	Latency     *loadgen.Percentiles `json:"latency,omitempty"`
	ServiceTime *loadgen.Percentiles `json:"service_time,omitempty"`
	Saturated   bool                 `json:"saturated,omitempty"`
	// ProxyCPU is the proxy's CPU time over the middle of the phase, in
	// percent of one core.
	ProxyCPU float64 `json:"proxy_cpu_percent,omitempty"`
	// ProxyRSSMiB is the highest resident set sampled (all the proxy's
	// processes).
	ProxyRSSMiB float64 `json:"proxy_rss_mib,omitempty"`
	// CPUBusy is how busy each CPU was over the middle of the phase, and
	// CPUIRQ the part of it spent on interrupts (mostly loopback softirq).
	CPUBusy map[string]float64 `json:"cpu_busy_percent,omitempty"`
	CPUIRQ  map[string]float64 `json:"cpu_irq_percent,omitempty"`
}

// generator runs load tools.
type generator struct {
	env        *env
	loadBin    string
	wrkBin     string // empty: bench/load does the throughput phases too
	tokensPath string
	luaPath    string
}

// writeWrkScript writes the Lua script that makes wrk spread requests over
// the same tokens bench/load uses: the requests are serialised once, in
// init, so each request costs wrk a table lookup.
func (g *generator) writeWrkScript() error {
	const script = `-- Spreads requests over the bearer tokens of the file given after "--".
local reqs = {}
local n = 0
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      n = n + 1
      reqs[n] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. line })
    end
  end
  if n == 0 then
    n = 1
    reqs[1] = wrk.format()
  end
  i = math.random(n) - 1
end

function request()
  i = i % n + 1
  return reqs[i]
end
`
	g.luaPath = filepath.Join(g.env.dir, "tokens.lua")
	return os.WriteFile(g.luaPath, []byte(script), 0o644)
}

// run executes one phase against sc, sampling the proxy while it lasts.
func (g *generator) run(ctx context.Context, sc *scenario, kind, tool string, conns int, dur time.Duration, rate float64) (*phase, error) {
	var pids []int
	if sc.proc != nil {
		pids = processTree(sc.proc.pid())
	}
	s := startSampler(pids, dur)
	var ph *phase
	var err error
	if tool == "wrk" {
		ph, err = g.runWrk(ctx, sc, conns, dur)
	} else {
		ph, err = g.runLoad(ctx, sc, conns, dur, rate)
	}
	s.finish()
	if err != nil {
		return nil, err
	}
	ph.Kind, ph.Tool, ph.Connections, ph.DurationSec, ph.Rate = kind, tool, conns, dur.Seconds(), rate
	ph.ProxyCPU, ph.ProxyRSSMiB, ph.CPUBusy, ph.CPUIRQ = s.cpuPercent, s.rssMiB, s.busy, s.irq
	return ph, nil
}

func (g *generator) runLoad(ctx context.Context, sc *scenario, conns int, dur time.Duration, rate float64) (*phase, error) {
	out := filepath.Join(g.env.dir, "load-result.json")
	args := []string{"-url", sc.url, "-c", strconv.Itoa(conns), "-d", dur.String(),
		"-tokens", g.tokensPath, "-json", out, "-quiet", "-timeout", "10s"}
	if rate > 0 {
		args = append(args, "-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	if sc.perConn > 0 {
		args = append(args, "-requests-per-conn", strconv.Itoa(sc.perConn))
	}
	cmd := g.env.pin.command(g.env.pin.loadCPU, g.loadBin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	if out, err := runCmd(ctx, cmd); err != nil {
		return nil, fmt.Errorf("load: %v\n%s", err, out)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var res loadgen.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("load result: %w", err)
	}
	ph := &phase{RPS: res.RPS, Requests: res.Requests, Non2xx: res.Non2xx, Errors: res.Errors,
		Status: res.Status, Latency: &res.Latency, ServiceTime: res.ServiceTime, Saturated: res.Saturated}
	return ph, nil
}

func (g *generator) runWrk(ctx context.Context, sc *scenario, conns int, dur time.Duration) (*phase, error) {
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	cmd := g.env.pin.command(g.env.pin.loadCPU, g.wrkBin, "-t1", "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(secs)+"s", "--timeout", "10s", "--latency", "-s", g.luaPath, sc.url, "--", g.tokensPath)
	out, err := runCmd(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return parseWrk(out)
}

// runCmd runs cmd, killing it when ctx ends, and returns its output.
func runCmd(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return buf.Bytes(), ctx.Err()
	}
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$`)
)

// parseWrk reads wrk's report. wrk counts statuses ≥ 400 as "Non-2xx or
// 3xx"; its percentiles are not corrected for coordinated omission.
func parseWrk(out []byte) (*phase, error) {
	s := string(out)
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("wrk output has no Requests/sec:\n%s", s)
	}
	ph := &phase{}
	ph.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkRequests.FindStringSubmatch(s); m != nil {
		ph.Requests, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		ph.Non2xx, _ = strconv.ParseUint(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ph.Errors += n
		}
	}
	var lat loadgen.Percentiles
	found := false
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		switch m[1] {
		case "50":
			lat.P50, found = v, true
		case "90":
			lat.P90 = v
		case "99":
			lat.P99 = v
		}
	}
	if found {
		lat.Count = ph.Requests
		ph.Latency = &lat
	}
	return ph, nil
}

// sampler watches the proxy during a phase: resident set every 100 ms,
// CPU time and per-CPU busy time between 10 % and 95 % of the phase (the
// load tool's start and stop are left out).
type sampler struct {
	pids []int
	stop chan struct{}
	wg   sync.WaitGroup

	rssMiB     float64
	cpuPercent float64
	busy       map[string]float64
	irq        map[string]float64
}

func startSampler(pids []int, dur time.Duration) *sampler {
	s := &sampler{pids: pids, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		start := time.Now()
		from, to := start.Add(dur/10), start.Add(dur*95/100)
		var cpu0 float64
		var t0 time.Time
		var ct0 cpuTimes
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case now := <-tick.C:
				if len(s.pids) > 0 {
					s.rssMiB = max(s.rssMiB, float64(rssBytes(s.pids))/(1<<20))
				}
				switch {
				case t0.IsZero() && !now.Before(from):
					t0, ct0 = now, readCPUTimes()
					cpu0 = cpuSeconds(s.pids)
				case !t0.IsZero() && s.busy == nil && !now.Before(to):
					ct1 := readCPUTimes()
					if el := now.Sub(t0).Seconds(); el > 0 && len(s.pids) > 0 {
						s.cpuPercent = 100 * (cpuSeconds(s.pids) - cpu0) / el
					}
					s.busy, s.irq = map[string]float64{}, map[string]float64{}
					for cpu := range ct1 {
						s.busy[cpu], s.irq[cpu] = busyPercent(ct0, ct1, cpu)
					}
				}
			}
		}
	}()
	return s
}

func (s *sampler) finish() {
	close(s.stop)
	s.wg.Wait()
}

// describeBusy renders per-CPU busy percentages, "cpu0 97% cpu1 100%".
func describeBusy(b map[string]float64) string {
	var parts []string
	for i := 0; i < len(b); i++ {
		if v, ok := b[strconv.Itoa(i)]; ok {
			parts = append(parts, fmt.Sprintf("cpu%d %.0f%%", i, v))
		}
	}
	return strings.Join(parts, " ")
}
