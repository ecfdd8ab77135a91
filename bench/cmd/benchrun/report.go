package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// machine describes where the run happened.
type machine struct {
	CPUModel  string `json:"cpu_model"`
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// summary is one scenario's medians and every phase it ran.
type summary struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Skipped     string    `json:"skipped,omitempty"`
	RPS         float64   `json:"rps"`
	RPSRounds   []float64 `json:"rps_rounds,omitempty"`
	P50         float64   `json:"p50_ms"`
	P99         float64   `json:"p99_ms"`
	P999        float64   `json:"p99_9_ms"`
	// AddedP99 is P99 minus direct's P99 (medians).
	AddedP99 *float64 `json:"added_p99_ms,omitempty"`
	// Errors counts non-2xx responses and transport errors over every phase.
	Errors uint64 `json:"errors"`
	// ProxyCPU is the median CPU use of the proxy in the throughput phases
	// (percent of one core).
	ProxyCPU float64 `json:"proxy_cpu_percent"`
	// LoadCPUBusy is the median busy share of the load CPU in the
	// throughput phases: near 100 % means the load side, not the proxy,
	// limited the throughput.
	LoadCPUBusy float64 `json:"load_cpu_busy_percent"`
	// ProxyCPUBusy is the median busy share of the proxy's CPU: well above
	// ProxyCPU means other processes ran there.
	ProxyCPUBusy float64 `json:"proxy_cpu_busy_percent"`
	// ProxyCPUIRQ is the part of ProxyCPUBusy spent on interrupts.
	ProxyCPUIRQ float64  `json:"proxy_cpu_irq_percent"`
	RSSMiB      float64  `json:"rss_mib"`
	RSSHighMiB  float64  `json:"rss_high_conns_mib"`
	Phases      []*phase `json:"phases"`
}

// budget is one line of SPEC §8.
type budget struct {
	Name     string  `json:"name"`
	Measured float64 `json:"measured"`
	Target   float64 `json:"target"`
	// Op is ">=" or "<" (or "=" for the allocation count).
	Op      string `json:"op"`
	Unit    string `json:"unit,omitempty"`
	Verdict string `json:"verdict"` // PASS, MISS or n/a
	Note    string `json:"note,omitempty"`
}

// report is the whole run.
type report struct {
	Started        time.Time     `json:"started"`
	Finished       time.Time     `json:"finished"`
	Machine        machine       `json:"machine"`
	Pinned         bool          `json:"pinned"`
	ProxyCPU       string        `json:"proxy_cpu"`
	LoadCPU        string        `json:"load_cpu"`
	Rounds         int           `json:"rounds"`
	Connections    int           `json:"connections"`
	ConnsHigh      int           `json:"connections_high"`
	Users          int           `json:"users"`
	BodyBytes      int           `json:"body_bytes"`
	ThroughputTool string        `json:"throughput_tool"`
	ThroughputSec  float64       `json:"throughput_s"`
	LatencySec     float64       `json:"latency_s"`
	LatencyRate    float64       `json:"latency_rate"`
	Scenarios      []*summary    `json:"scenarios"`
	Budgets        []budget      `json:"budgets"`
	Micro          []microResult `json:"micro,omitempty"`
	Notes          []string      `json:"notes,omitempty"`
	byName         map[string]*summary
}

func newReport(o *options) *report {
	return &report{
		Started:        time.Now(),
		Machine:        describeMachine(),
		ProxyCPU:       o.proxyCPU,
		LoadCPU:        o.loadCPU,
		Rounds:         o.rounds,
		Connections:    o.conns,
		ConnsHigh:      o.connsHigh,
		Users:          o.users,
		BodyBytes:      o.size,
		ThroughputTool: "load",
		ThroughputSec:  o.duration.Seconds(),
		LatencySec:     o.latencyDur.Seconds(),
		byName:         map[string]*summary{},
	}
}

func describeMachine() machine {
	m := machine{CPUs: onlineCPUs(), Go: runtime.Version(), LoadStart: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// onlineCPUs counts the host's online CPUs. runtime.NumCPU only counts the
// CPUs this process may run on, and bench/run.sh pins it to one.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		c := a
		var err2 error
		if isRange {
			c, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || c < a {
			return runtime.NumCPU()
		}
		n += c - a + 1
	}
	return n
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (r *report) note(s string) { r.Notes = append(r.Notes, s) }

func (r *report) add(sc *scenario) *summary {
	s := &summary{Name: sc.name, Description: scenarioDescriptions[sc.name], Skipped: sc.skip}
	r.Scenarios = append(r.Scenarios, s)
	r.byName[sc.name] = s
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// finish computes the medians and the budgets.
func (r *report) finish() {
	r.Finished = time.Now()
	r.Machine.LoadEnd = loadavg()
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			continue
		}
		var p50, p99, p999, cpu, busy, pbusy, pirq []float64
		for _, ph := range s.Phases {
			if ph.Kind != "warmup" {
				s.Errors += ph.Non2xx + ph.Errors
			}
			switch ph.Kind {
			case "throughput":
				s.RPSRounds = append(s.RPSRounds, ph.RPS)
				cpu = append(cpu, ph.ProxyCPU)
				busy = append(busy, ph.CPUBusy[r.LoadCPU])
				pbusy = append(pbusy, ph.CPUBusy[r.ProxyCPU])
				pirq = append(pirq, ph.CPUIRQ[r.ProxyCPU])
				s.RSSMiB = max(s.RSSMiB, ph.ProxyRSSMiB)
			case "latency":
				if ph.Latency != nil {
					p50 = append(p50, ph.Latency.P50)
					p99 = append(p99, ph.Latency.P99)
					p999 = append(p999, ph.Latency.P999)
				}
				s.RSSMiB = max(s.RSSMiB, ph.ProxyRSSMiB)
			case "conns":
				s.RSSHighMiB = max(s.RSSHighMiB, ph.ProxyRSSMiB)
			}
		}
		s.RPS = median(s.RPSRounds)
		s.P50, s.P99, s.P999 = median(p50), median(p99), median(p999)
		s.ProxyCPU, s.LoadCPUBusy, s.ProxyCPUBusy, s.ProxyCPUIRQ = median(cpu), median(busy), median(pbusy), median(pirq)
	}
	if d := r.ran(scDirect); d != nil {
		for _, s := range r.Scenarios {
			if s.Skipped == "" && s.Name != scDirect && s.P99 > 0 {
				v := s.P99 - d.P99
				s.AddedP99 = &v
			}
		}
	}
	r.budgets()
	for _, s := range r.Scenarios {
		if s.Skipped != "" || s.Name == scDirect || s.ProxyCPU <= 0 || s.ProxyCPU >= 90 {
			continue
		}
		switch {
		case r.Pinned && s.ProxyCPUBusy-s.ProxyCPUIRQ-s.ProxyCPU > 10:
			r.note(fmt.Sprintf("%s: the proxy used %.0f%% of CPU %s, which was %.0f%% busy (%.0f%% interrupts): other processes ran on the proxy's CPU, so this scenario's figures are low",
				s.Name, s.ProxyCPU, r.ProxyCPU, s.ProxyCPUBusy, s.ProxyCPUIRQ))
		case s.LoadCPUBusy > 95:
			r.note(fmt.Sprintf("%s: the proxy used %.0f%% of its CPU while CPU %s (load generator, upstream, Redis and anything else running there) was %.0f%% busy: the load side limited this scenario, so its ratios understate the proxy",
				s.Name, s.ProxyCPU, r.LoadCPU, s.LoadCPUBusy))
		}
	}
}

// ran returns the summary of a scenario that ran, or nil.
func (r *report) ran(name string) *summary {
	if s := r.byName[name]; s != nil && s.Skipped == "" && s.RPS > 0 {
		return s
	}
	return nil
}

func (r *report) budgets() {
	ratio := func(a, b string, target float64) {
		name := a + " / " + b
		sa, sb := r.ran(a), r.ran(b)
		if sa == nil || sb == nil {
			missing := a
			if sa != nil {
				missing = b
			}
			r.Budgets = append(r.Budgets, budget{Name: name, Target: target, Op: ">=", Verdict: "n/a", Note: missing + " did not run"})
			return
		}
		r.Budgets = append(r.Budgets, verdict(budget{Name: name, Measured: sa.RPS / sb.RPS, Target: target, Op: ">=", Unit: "×"}))
	}
	ratio(scPassthrough, scFasthttpMin, 0.95)
	ratio(scPassthrough, scNginx, 1.0)
	ratio(scChainMemory, scPassthrough, 0.85)
	ratio(scChainRedis, scHAProxyJWT, 1.0)
	ratio(scChainRedisLease, scHAProxyJWT, 1.0)
	ratio(scChainTLS, scNginxTLS, 0.8)
	// The handshake-heavy scenario has no target: it is stated side by
	// side (SPEC §15).
	if a, b := r.ran(scChainTLSHandshake), r.ran(scNginxTLSHandshake); a != nil && b != nil {
		r.note(fmt.Sprintf("TLS 1.3 handshake per request (no keep-alive, no resumption): %s %.0f req/s, %s %.0f req/s (%.2f × nginx); stated, no target",
			scChainTLSHandshake, a.RPS, scNginxTLSHandshake, b.RPS, a.RPS/b.RPS))
	}
	for _, m := range r.Micro {
		if strings.HasPrefix(m.Name, "BenchmarkChain/") && strings.Contains(m.Name, "memory") {
			r.Budgets = append(r.Budgets, verdict(budget{Name: "allocs/op, " + strings.TrimPrefix(m.Name, "Benchmark"),
				Measured: m.AllocsPerOp, Target: 0, Op: "=", Unit: "allocs"}))
		}
	}
	for _, name := range []string{scPassthrough, scChainMemory, scChainRedis, scChainRedisLease} {
		s := r.ran(name)
		if s == nil || s.AddedP99 == nil {
			continue
		}
		r.Budgets = append(r.Budgets, verdict(budget{Name: fmt.Sprintf("p99 added latency, %s (at %.0f req/s, %d conns)", name, r.LatencyRate, r.Connections),
			Measured: *s.AddedP99, Target: 1, Op: "<", Unit: "ms"}))
	}
	if r.ConnsHigh > 0 {
		for _, name := range []string{scPassthrough, scChainMemory, scChainRedis, scChainRedisLease} {
			s := r.ran(name)
			if s == nil || s.RSSHighMiB == 0 {
				continue
			}
			r.Budgets = append(r.Budgets, verdict(budget{Name: fmt.Sprintf("RSS at %d connections, %s", r.ConnsHigh, name),
				Measured: s.RSSHighMiB, Target: 30, Op: "<", Unit: "MiB"}))
		}
	}
}

func verdict(b budget) budget {
	var ok bool
	switch b.Op {
	case ">=":
		ok = b.Measured >= b.Target
	case "<":
		ok = b.Measured < b.Target
	case "=":
		ok = b.Measured == b.Target
	}
	if ok {
		b.Verdict = "PASS"
		return b
	}
	b.Verdict = "MISS"
	switch {
	case b.Op == ">=" && b.Target > 0:
		b.Note = fmt.Sprintf("%.1f %% below the target", 100*(1-b.Measured/b.Target))
	case b.Op == "<" && b.Target > 0:
		b.Note = fmt.Sprintf("%.1f %% over the target", 100*(b.Measured/b.Target-1))
	}
	return b
}

// markdown renders the tables.
func (r *report) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## gatewayd bench, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, Linux %s, %s; load average %s at the start, %s at the end.\n",
		m.CPUModel, m.CPUs, m.Kernel, m.Go, m.LoadStart, m.LoadEnd)
	if r.Pinned {
		fmt.Fprintf(&b, "Proxy under test on CPU %s (GOMAXPROCS=1, 1 nginx worker, HAProxy nbthread 1); load generator, upstream and Redis on CPU %s.\n", r.ProxyCPU, r.LoadCPU)
	} else {
		b.WriteString("Processes not pinned to CPUs.\n")
	}
	fmt.Fprintf(&b, "req/s: %s, closed loop, %d connections, %.0f s per round, median of %d interleaved rounds; every request carries one of %d users' access tokens (%d-byte upstream body).\n",
		r.ThroughputTool, r.Connections, r.ThroughputSec, r.Rounds, r.Users, r.BodyBytes)
	fmt.Fprintf(&b, "Latency: bench/load, open loop at %.0f req/s for every scenario, %d connections, %.0f s per round, corrected for coordinated omission, medians; +p99 is the scenario's p99 minus direct's.\n",
		r.LatencyRate, r.Connections, r.LatencySec)
	if r.ConnsHigh > 0 {
		fmt.Fprintf(&b, "RSS: highest resident set sampled during the rounds; RSS@%d: during a closed-loop run at %d connections.\n", r.ConnsHigh, r.ConnsHigh)
	}
	b.WriteString("Absolute numbers vary from run to run (shared host); only ratios from the same run mean anything.\n\n")

	nginx := r.ran(scNginx)
	hdr := "| scenario | req/s | × nginx | p50 ms | p99 ms | p99.9 ms | +p99 ms | errors | proxy CPU % | load CPU % | RSS MiB |"
	sep := "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
	if r.ConnsHigh > 0 {
		hdr += fmt.Sprintf(" RSS@%d MiB |", r.ConnsHigh)
		sep += "--:|"
	}
	b.WriteString(hdr + "\n" + sep + "\n")
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |\n", s.Name, s.Skipped)
			continue
		}
		vsNginx := "–"
		if nginx != nil {
			vsNginx = fmt.Sprintf("%.2f", s.RPS/nginx.RPS)
		}
		added, cpu, rss, rssHigh := "–", "–", "–", "–"
		if s.AddedP99 != nil {
			added = fmt.Sprintf("%+.3f", *s.AddedP99)
		}
		if s.Name != scDirect {
			cpu = fmt.Sprintf("%.0f", s.ProxyCPU)
			rss = fmt.Sprintf("%.1f", s.RSSMiB)
			rssHigh = fmt.Sprintf("%.1f", s.RSSHighMiB)
		}
		// The handshake scenarios have no latency phase.
		p50, p99, p999 := "–", "–", "–"
		if s.P99 > 0 {
			p50, p99, p999 = fmt.Sprintf("%.3f", s.P50), fmt.Sprintf("%.3f", s.P99), fmt.Sprintf("%.3f", s.P999)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %s | %s | %d | %s | %.0f | %s |",
			s.Name, s.RPS, vsNginx, p50, p99, p999, added, s.Errors, cpu, s.LoadCPUBusy, rss)
		if r.ConnsHigh > 0 {
			fmt.Fprintf(&b, " %s |", rssHigh)
		}
		b.WriteString("\n")
	}

	b.WriteString("\n### Budgets of SPEC §8 and §15 (ratios of medians from this run)\n\n| budget | measured | target | result |\n|---|--:|--:|---|\n")
	for _, bu := range r.Budgets {
		measured := "–"
		if bu.Verdict != "n/a" {
			measured = formatValue(bu.Measured, bu.Unit)
		}
		res := bu.Verdict
		if bu.Note != "" {
			res += " (" + bu.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s |\n", bu.Name, measured, opSymbol(bu.Op), formatValue(bu.Target, bu.Unit), res)
	}
	if len(r.Micro) > 0 {
		b.WriteString("\n### Whole-chain micro-benchmark (go -C bench test -bench Chain -benchmem ./chain)\n\n| benchmark | ns/op | B/op | allocs/op |\n|---|--:|--:|--:|\n")
		for _, mr := range r.Micro {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f |\n", mr.Name, mr.NsPerOp, mr.BytesPerOp, mr.AllocsPerOp)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	b.WriteString("\nScenarios:\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "- %s: %s\n", s.Name, s.Description)
	}
	return b.String()
}

func opSymbol(op string) string {
	switch op {
	case ">=":
		return "≥"
	case "<":
		return "<"
	}
	return op
}

func formatValue(v float64, unit string) string {
	switch unit {
	case "×":
		return fmt.Sprintf("%.2f ×", v)
	case "ms":
		return fmt.Sprintf("%.3f ms", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "allocs":
		if v == math.Trunc(v) {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%g", v)
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
