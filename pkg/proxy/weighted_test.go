package proxy

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// weightedUpstream builds an upstream over unused loopback addresses (pick
// never dials) with the given weights.
func weightedUpstream(t testing.TB, balance string, weights ...int) *Upstream {
	t.Helper()
	targets := make([]string, len(weights))
	for i := range weights {
		targets[i] = "http://127.0.0." + strconv.Itoa(i+1) + ":9"
	}
	return newTestUpstream(t, Config{Targets: targets, Weights: weights, Balance: balance})
}

// pickCounts picks n times and counts the picks of each target.
func pickCounts(u *Upstream, n int) []int {
	counts := make([]int, len(u.targets))
	for range n {
		counts[u.targetIndex(u.next(0))]++
	}
	return counts
}

// next picks as a request's first attempt does.
func (u *Upstream) next(tried uint64) *target { return u.pick(tried, u.rr.Add(1)-1) }

func (u *Upstream) targetIndex(t *target) int {
	for i, x := range u.targets {
		if x == t {
			return i
		}
	}
	return -1
}

// checkShares fails unless each target's count is within 2 % (or one pick)
// of its expected share of n: weight over the sum of the weights of the targets
// with up[i] true.
func checkShares(t *testing.T, counts, weights []int, up []bool, n int) {
	t.Helper()
	total := 0
	for i, w := range weights {
		if up == nil || up[i] {
			total += w
		}
	}
	for i, w := range weights {
		want := 0.0
		if up == nil || up[i] {
			want = float64(n) * float64(w) / float64(total)
		}
		// ±1 pick for shares too small for 2 % to be a whole pick.
		if math.Abs(float64(counts[i])-want) > max(0.02*want, 1) || (want == 0 && counts[i] != 0) {
			t.Errorf("target %d (weight %d) got %d of %d picks, want %.0f ±2%% (counts %v)", i, w, counts[i], n, want, counts)
		}
	}
}

func TestWeightedRoundRobinDistribution(t *testing.T) {
	tests := []struct {
		name        string
		giveWeights []int
	}{
		{name: "90/10", giveWeights: []int{90, 10}},
		{name: "5/3/2", giveWeights: []int{5, 3, 2}},
		{name: "equal", giveWeights: []int{1, 1, 1}},
		{name: "100/1", giveWeights: []int{100, 1}},
		{name: "drained", giveWeights: []int{3, 0, 1}},
		{name: "large", giveWeights: []int{10000, 2500, 7, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := weightedUpstream(t, BalanceRoundRobin, tt.giveWeights...)
			checkShares(t, pickCounts(u, 10000), tt.giveWeights, nil, 10000)
		})
	}
}

// TestWeightedRoundRobinIsSmooth checks that targets are interleaved: in
// every run of 100 consecutive picks each target's count is within 3 of
// its share, so a light target is not served in bursts.
func TestWeightedRoundRobinIsSmooth(t *testing.T) {
	weights := []int{90, 7, 3}
	u := weightedUpstream(t, BalanceRoundRobin, weights...)
	seq := make([]int, 10000)
	for i := range seq {
		seq[i] = u.targetIndex(u.next(0))
	}
	const window = 100
	for start := 0; start+window <= len(seq); start++ {
		counts := make([]int, len(weights))
		for _, i := range seq[start : start+window] {
			counts[i]++
		}
		for i, w := range weights {
			if d := counts[i] - w; d > 3 || d < -3 {
				t.Fatalf("picks %d to %d: target %d (weight %d) got %d", start, start+window, i, w, counts[i])
			}
		}
	}
}

func TestWeightedRedistributesWhenTargetDown(t *testing.T) {
	weights := []int{6, 3, 1}
	tests := []struct {
		name     string
		giveDown func(u *Upstream)
		giveUp   func(u *Upstream)
	}{
		{
			name:     "unhealthy",
			giveDown: func(u *Upstream) { u.targets[0].healthy.Store(false) },
			giveUp:   func(u *Upstream) { u.targets[0].healthy.Store(true) },
		},
		{
			name:     "ejected",
			giveDown: func(u *Upstream) { u.targets[0].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano()) },
			// An ejection whose time is up ends at the next pick.
			giveUp: func(u *Upstream) { u.targets[0].ejectedUntil.Store(time.Now().Add(-time.Second).UnixNano()) },
		},
	}
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		for _, tt := range tests {
			t.Run(balance+"/"+tt.name, func(t *testing.T) {
				u := weightedUpstream(t, balance, weights...)
				checkShares(t, pickCounts(u, 10000), weights, nil, 10000)
				tt.giveDown(u)
				// 0 is out: 1 and 2 share its weight 3:1.
				checkShares(t, pickCounts(u, 10000), weights, []bool{false, true, true}, 10000)
				tt.giveUp(u)
				checkShares(t, pickCounts(u, 10000), weights, nil, 10000)
			})
		}
	}
}

func TestWeightedFailsOpenWhenEveryTargetIsUnhealthy(t *testing.T) {
	weights := []int{3, 1}
	u := weightedUpstream(t, BalanceRoundRobin, weights...)
	for _, tg := range u.targets {
		tg.healthy.Store(false)
	}
	checkShares(t, pickCounts(u, 10000), weights, nil, 10000)
}

func TestDrainedTargetIsNeverPicked(t *testing.T) {
	u := weightedUpstream(t, BalanceRoundRobin, 0, 1)
	u.targets[1].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	if tg := u.next(0); tg != nil {
		t.Fatalf("picked %s, want nil: the only target with weight is ejected", tg.url)
	}
}

func TestRetryPicksUntriedTarget(t *testing.T) {
	for _, balance := range []string{BalanceRoundRobin, BalanceLeastConn} {
		t.Run(balance, func(t *testing.T) {
			u := weightedUpstream(t, balance, 100, 1, 1)
			for range 1000 {
				first := u.next(0)
				second := u.next(first.bit)
				if second == first {
					t.Fatalf("retry went to the tried target %s", first.url)
				}
			}
			// With every target tried, the retry may go to any.
			all := u.targets[0].bit | u.targets[1].bit | u.targets[2].bit
			if u.next(all) == nil {
				t.Fatal("no target once every target was tried")
			}
		})
	}
}

func TestWeightedLeastConn(t *testing.T) {
	u := weightedUpstream(t, BalanceLeastConn, 3, 1)
	a, b := u.targets[0], u.targets[1]
	tests := []struct {
		name                 string
		giveA, giveB         int64
		wantOnlyA, wantOnlyB bool
	}{
		{name: "equal load per weight ties", giveA: 3, giveB: 1},
		{name: "a lighter per weight", giveA: 2, giveB: 1, wantOnlyA: true},
		{name: "b lighter per weight", giveA: 4, giveB: 1, wantOnlyB: true},
		{name: "b idle", giveA: 1, giveB: 0, wantOnlyB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.inflight.Store(tt.giveA)
			b.inflight.Store(tt.giveB)
			defer a.inflight.Store(0)
			defer b.inflight.Store(0)
			counts := pickCounts(u, 1000)
			switch {
			case tt.wantOnlyA && counts[1] != 0, tt.wantOnlyB && counts[0] != 0:
				t.Fatalf("counts %v", counts)
			case !tt.wantOnlyA && !tt.wantOnlyB:
				// A tie is broken by weight.
				checkShares(t, counts, []int{3, 1}, nil, 1000)
			}
		})
	}
}

// TestWeightedLeastConnUnderLoad simulates requests that each take the same
// time: least_conn keeps the requests in flight, and so the requests sent,
// in proportion to the weights.
func TestWeightedLeastConnUnderLoad(t *testing.T) {
	weights := []int{90, 10}
	u := weightedUpstream(t, BalanceLeastConn, weights...)
	const hold = 40 // ticks a request stays in flight
	ring := make([]*target, hold)
	counts := make([]int, len(weights))
	for tick := range 10000 + hold {
		if done := ring[tick%hold]; done != nil {
			done.inflight.Add(-1)
		}
		tg := u.next(0)
		tg.inflight.Add(1)
		ring[tick%hold] = tg
		if tick >= hold { // steady state only
			counts[u.targetIndex(tg)]++
		}
	}
	checkShares(t, counts, weights, nil, 10000)
}

func TestWeightsInConfigKey(t *testing.T) {
	base := Config{Name: "k", Targets: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}}
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{name: "weights", modify: func(c *Config) { c.Weights = []int{2, 1} }},
		{name: "retry_on", modify: func(c *Config) { c.RetryOn = []string{"connect", "503"} }},
		{name: "retry_budget", modify: func(c *Config) { c.RetryBudget = &RetryBudget{Ratio: 0.5} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.modify(&c)
			if c.Key() == base.Key() {
				t.Fatalf("key unchanged by %s: %s", tt.name, c.Key())
			}
		})
	}
	if got, want := (Config{Name: "k", Targets: base.Targets, Weights: []int{1, 1}}).Key(), base.Key(); got != want {
		t.Fatalf("explicit weight 1 changes the key:\n%s\n%s", got, want)
	}
}

func TestWeightValidation(t *testing.T) {
	targets := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	tests := []struct {
		name        string
		giveWeights []int
		giveRetryOn []string
		giveBudget  *RetryBudget
		wantErr     string
	}{
		{name: "negative", giveWeights: []int{-1, 1}, wantErr: "targets[0].weight: must be between 0 and 10000, got -1"},
		{name: "too large", giveWeights: []int{1, 10001}, wantErr: "targets[1].weight: must be between 0 and 10000, got 10001"},
		{name: "all drained", giveWeights: []int{0, 0}, wantErr: "every target has weight 0"},
		{name: "length", giveWeights: []int{1}, wantErr: "weights: 1 weights for 2 targets"},
		{name: "retry_on word", giveRetryOn: []string{"timeout"}, wantErr: `retry_on[0]: expected "connect" or a status code from 500 to 599, got "timeout"`},
		{name: "retry_on 4xx", giveRetryOn: []string{"429"}, wantErr: "retry_on[0]: only 5xx statuses are retried (500 to 599), got 429"},
		{name: "retry_on twice", giveRetryOn: []string{"503", "503"}, wantErr: `retry_on[1]: "503" is listed twice`},
		{name: "ratio", giveBudget: &RetryBudget{Ratio: 1.5}, wantErr: "retry_budget.ratio: must be between 0 and 1, got 1.5"},
		{name: "window", giveBudget: &RetryBudget{Window: 1500 * time.Millisecond}, wantErr: "retry_budget.window: must be whole seconds from 1s to 1m0s, got 1.5s"},
		{name: "min", giveBudget: &RetryBudget{MinPerSecond: -1}, wantErr: "retry_budget.min_per_second: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Name: "v", Targets: targets, Weights: tt.giveWeights, RetryOn: tt.giveRetryOn, RetryBudget: tt.giveBudget}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want a line containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDeriveSharesTargetSet(t *testing.T) {
	live := startBackend(t, textHandler("live"))
	other := startBackend(t, textHandler("other"))
	cfg := Config{Targets: []string{live.url, other.url}}
	u := newTestUpstream(t, cfg)
	if _, err := get(t, u, "GET", "/"); err != nil {
		t.Fatal(err)
	}
	u.targets[1].ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())

	cfg2 := cfg
	cfg2.Name = u.Name()
	cfg2.Weights = []int{1, 5}
	cfg2.Retries, cfg2.RetryOn = 1, []string{"503"}
	d, err := u.Derive(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if d.targetSet != u.targetSet {
		t.Fatal("derived upstream has a target set of its own")
	}
	// The ejection carries over: every request goes to the first target
	// despite the weights.
	for range 20 {
		if body, err := get(t, d, "GET", "/"); err != nil || body != "live" {
			t.Fatalf("body %q, error %v", body, err)
		}
	}
	if d.retries != 1 || d.weights[1] != 5 || !d.retriesStatus(503) {
		t.Fatal("derived upstream does not have the new policy")
	}

	moved := cfg2
	moved.Targets = []string{live.url}
	moved.Weights = nil
	if _, err := u.Derive(moved); err == nil {
		t.Fatal("Derive accepted other targets")
	}
	bad := cfg2
	bad.Weights = []int{0, 0}
	if _, err := u.Derive(bad); err == nil {
		t.Fatal("Derive accepted an invalid policy")
	}
}
