package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

func TestSlopePerSecond(t *testing.T) {
	tests := []struct {
		name string
		give []float64
		want float64
	}{
		{name: "flat", give: []float64{5, 5, 5, 5}, want: 0},
		{name: "linear", give: []float64{0, 2, 4, 6}, want: 2},
		{name: "noisy flat", give: []float64{10, 11, 10, 11, 10, 11, 10, 11}, want: 1.0 / 21},
		{name: "falling", give: []float64{9, 6, 3, 0}, want: -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := make([]float64, len(tt.give))
			for i := range ts {
				ts[i] = float64(i)
			}
			if got := slopePerSecond(ts, tt.give); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("slope %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	// 10 minutes sampled every 10 s; the second half is judged.
	samples := func(rss func(float64) float64, gor, fds func(float64) int) []sample {
		var out []sample
		for s := 0.0; s <= 600; s += 10 {
			out = append(out, sample{T: s, RSSMiB: rss(s), Goroutines: gor(s), FDs: fds(s)})
		}
		return out
	}
	flatRSS := func(s float64) float64 { return 20 + math.Mod(s, 30)/30 } // sawtooth under 1 MiB
	flatInt := func(s float64) int { return 60 + int(s)%20/10 }
	tests := []struct {
		name     string
		give     []sample
		wantPass bool
		wantBad  string
	}{
		{name: "flat", give: samples(flatRSS, flatInt, flatInt), wantPass: true},
		{name: "warm-up growth only", give: samples(func(s float64) float64 { return math.Min(s, 300) / 10 }, flatInt, flatInt), wantPass: true},
		{name: "rss leak", give: samples(func(s float64) float64 { return 20 + s/30 }, flatInt, flatInt), wantBad: "RSS"},
		{name: "goroutine leak", give: samples(flatRSS, func(s float64) int { return 60 + int(s)/2 }, flatInt), wantBad: "goroutines"},
		{name: "fd leak", give: samples(flatRSS, flatInt, func(s float64) int { return 60 + int(s)/3 }), wantBad: "open FDs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &result{Duration: 600, Samples: tt.give}
			judge(res, config{Limits: defaultLimits})
			if res.Pass != tt.wantPass {
				t.Fatalf("pass %v, want %v; problems %v", res.Pass, tt.wantPass, res.Problems)
			}
			if tt.wantBad != "" && (len(res.Problems) != 1 || !strings.HasPrefix(res.Problems[0], tt.wantBad+" grows")) {
				t.Fatalf("problems %v, want one about %s", res.Problems, tt.wantBad)
			}
		})
	}
}

func TestJudgeTooFewSamples(t *testing.T) {
	res := &result{Duration: 20, Samples: []sample{{T: 0}, {T: 10}, {T: 20}}}
	judge(res, config{Limits: defaultLimits})
	if res.Pass || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "samples") {
		t.Fatalf("pass %v, problems %v", res.Pass, res.Problems)
	}
}

// TestShortSoak runs the real binary for a few seconds: the samples come
// from the process and the admin endpoint, the load is counted. Seconds
// of data say nothing about leaks, so the verdict is not asserted.
func TestShortSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts gatewayd")
	}
	var log bytes.Buffer
	cfg := config{
		Gatewayd: gatewaytest.Binary(t, "gatewayd"), Duration: 3 * time.Second, Interval: 250 * time.Millisecond,
		Connections: 4, Rate: 200, RequestsPerConn: 50, Users: 20, Limits: defaultLimits, Log: &log,
	}
	res, err := soak(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) < 6 {
		t.Fatalf("%d samples, want one every 250ms over 3s\n%s", len(res.Samples), log.String())
	}
	for i, s := range res.Samples {
		if s.RSSMiB <= 0 || s.Goroutines <= 0 || s.FDs <= 0 {
			t.Fatalf("sample %d incomplete: %+v", i, s)
		}
	}
	if len(res.Trends) != 3 {
		t.Fatalf("trends %+v, problems %v", res.Trends, res.Problems)
	}
	l := res.Load
	if l == nil || l.Requests == 0 || l.Status["200"] != l.Requests || l.Errors != 0 {
		t.Fatalf("load %+v", l)
	}
	if !strings.Contains(log.String(), "goroutines") {
		t.Fatalf("no sample lines:\n%s", log.String())
	}
}
