package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// microResult is one line of `go test -bench -benchmem`.
type microResult struct {
	Name        string  `json:"name"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

var benchName = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?$`)

// parseBench reads the benchmark lines of go test output: the name, the
// iteration count, then value-unit pairs (custom metrics included).
func parseBench(out string) []microResult {
	var res []microResult
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		m := benchName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		r := microResult{Name: m[1]}
		seen := false
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.NsPerOp, seen = v, true
			case "B/op":
				r.BytesPerOp = v
			case "allocs/op":
				r.AllocsPerOp = v
			}
		}
		if seen {
			res = append(res, r)
		}
	}
	return res
}

// runMicro runs the whole-chain micro-benchmark of bench/chain.
func runMicro(ctx context.Context, root string) ([]microResult, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("go not found: %w", err)
	}
	cmd := exec.Command(goBin, "test", "-run", "^$", "-bench", "^BenchmarkChain$", "-benchmem", "-benchtime", "20000x", "./chain")
	// bench/ is a module of its own (its plotting dependencies stay out of
	// the gateway's go.mod), so the benchmark runs from there.
	cmd.Dir = filepath.Join(root, "bench")
	out, err := runCmd(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	res := parseBench(string(out))
	if len(res) == 0 {
		return nil, fmt.Errorf("no benchmark results in:\n%s", out)
	}
	return res, nil
}
