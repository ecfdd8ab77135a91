// Command soak runs gatewayd (the full chain: request-id, jwt, blacklist,
// rbac, ratelimit) under steady open-loop load for a long time and samples
// its resident memory, goroutines (go_goroutines on the admin /metrics)
// and open file descriptors (/proc/<pid>/fd) every -interval. It fails
// (exit 1) when one of them grows without bound: the least-squares slope
// over the second half of the run (the first half is warm-up) is above its
// per-minute limit and the growth it implies is above a minimum.
//
//	soak -gatewayd bin/gatewayd -duration 10m
//	soak -gatewayd bin/gatewayd -duration 30m -redis -rate 5000 -json soak.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := config{Limits: defaultLimits, Log: stdout}
	fs.StringVar(&cfg.Gatewayd, "gatewayd", "bin/gatewayd", "gatewayd binary")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long to run")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "sampling interval")
	fs.IntVar(&cfg.Connections, "c", 50, "connections")
	fs.Float64Var(&cfg.Rate, "rate", 2000, "open-loop request rate per second (0: as fast as possible)")
	fs.IntVar(&cfg.RequestsPerConn, "requests-per-conn", 1000, "reconnect after this many requests, so connection setup and teardown are soaked too (0: never)")
	fs.IntVar(&cfg.Users, "users", 10000, "distinct users (tokens)")
	useRedis := fs.Bool("redis", false, "run the chain on a redis-server started for the soak")
	fs.Float64Var(&cfg.Limits.RSSPerMin, "max-rss-slope", defaultLimits.RSSPerMin, "RSS growth limit, MiB per minute")
	fs.Float64Var(&cfg.Limits.GoroutinesPerMin, "max-goroutine-slope", defaultLimits.GoroutinesPerMin, "goroutine growth limit per minute")
	fs.Float64Var(&cfg.Limits.FDsPerMin, "max-fd-slope", defaultLimits.FDsPerMin, "open FD growth limit per minute")
	jsonOut := fs.String("json", "", "write samples, trends and the load result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Duration <= 0 || cfg.Interval <= 0 || cfg.Users < 1 {
		fmt.Fprintln(stderr, "soak: -duration, -interval and -users must be positive")
		return 2
	}
	if *useRedis {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			fmt.Fprintln(stderr, "soak: -redis: redis-server not found (apt-get install -y redis-server)")
			return 2
		}
		cfg.RedisServer = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "soak: %v, sampling every %v, %d connections at %.0f req/s, %d users\n",
		cfg.Duration, cfg.Interval, cfg.Connections, cfg.Rate, cfg.Users)
	res, err := soak(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	printResult(stdout, res)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 1
		}
	}
	if !res.Pass {
		return 1
	}
	return 0
}

func printResult(w io.Writer, res *result) {
	if res.Load != nil {
		fmt.Fprint(w, res.Load.Text())
	}
	fmt.Fprintf(w, "\n| trend (second half) | first | last | slope per min | limit per min | growth | verdict |\n|---|--:|--:|--:|--:|--:|---|\n")
	for _, tr := range res.Trends {
		v := "PASS"
		if !tr.Pass {
			v = "FAIL"
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %+.2f | %.2f | %+.1f | %s |\n", tr.Name+unitSuffix(tr.Unit), tr.First, tr.Last, tr.PerMin, tr.MaxPerMin, tr.Growth, v)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	if res.Pass {
		fmt.Fprintln(w, "soak: PASS")
	} else {
		fmt.Fprintln(w, "soak: FAIL")
	}
}
