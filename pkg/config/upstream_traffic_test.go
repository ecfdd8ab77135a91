package config

import (
	"reflect"
	"testing"
)

func TestUpstreamTargetsAndRetryDefaults(t *testing.T) {
	const file = `
upstreams:
  mixed:
    targets:
      - http://127.0.0.1:9002
      - { url: "http://127.0.0.1:9003", weight: 9 }
      - { url: "http://127.0.0.1:9004" }
      - { url: "http://127.0.0.1:9005", weight: 0 }
    retries: 2
    retry_on: [connect, 502, "503"]
    retry_budget: { ratio: 0, min_per_second: 0 }
  plain: { targets: ["http://127.0.0.1:9006"] }
  anchored:
    targets: [&t { url: "http://127.0.0.1:9007", weight: 4 }]
routes:
  - name: r
    match: { path_prefix: / }
    upstream: plain
`
	cfg, err := Parse("traffic.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give        string
		wantURLs    []string
		wantWeights []int
		wantRetryOn []string
		wantBudget  [3]float64 // ratio, min_per_second, window seconds
	}{
		{
			give:        "mixed",
			wantURLs:    []string{"http://127.0.0.1:9002", "http://127.0.0.1:9003", "http://127.0.0.1:9004", "http://127.0.0.1:9005"},
			wantWeights: []int{1, 9, 1, 0},
			wantRetryOn: []string{"connect", "502", "503"},
			wantBudget:  [3]float64{0, 0, 10},
		},
		{
			give:        "plain",
			wantURLs:    []string{"http://127.0.0.1:9006"},
			wantWeights: []int{1},
			wantRetryOn: []string{RetryConnect},
			wantBudget:  [3]float64{DefaultRetryBudgetRatio, DefaultRetryBudgetMinPerSecond, 10},
		},
		{
			give:        "anchored",
			wantURLs:    []string{"http://127.0.0.1:9007"},
			wantWeights: []int{4},
			wantRetryOn: []string{RetryConnect},
			wantBudget:  [3]float64{DefaultRetryBudgetRatio, DefaultRetryBudgetMinPerSecond, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			u := cfg.Upstreams[tt.give]
			var weights []int
			for _, tg := range u.Targets {
				weights = append(weights, tg.Weight)
			}
			if got := URLs(u.Targets); !reflect.DeepEqual(got, tt.wantURLs) {
				t.Errorf("urls %v, want %v", got, tt.wantURLs)
			}
			if !reflect.DeepEqual(weights, tt.wantWeights) {
				t.Errorf("weights %v, want %v", weights, tt.wantWeights)
			}
			if !reflect.DeepEqual(u.RetryOn, tt.wantRetryOn) {
				t.Errorf("retry_on %v, want %v", u.RetryOn, tt.wantRetryOn)
			}
			b := u.RetryBudget
			got := [3]float64{b.Ratio, float64(b.MinPerSecond), b.Window.D().Seconds()}
			if got != tt.wantBudget {
				t.Errorf("retry_budget %v, want %v", got, tt.wantBudget)
			}
		})
	}
	if n := cfg.Upstreams["mixed"].Targets[1].Meta.Pos("weight"); n == nil || n.Line != 6 {
		t.Errorf("weight position %v, want line 6", n)
	}
}
