// Command load is the benchmarks' HTTP/1.1 load generator.
//
// Closed loop, 50 connections, 10 s, 1000 users' access tokens:
//
//	load -url http://127.0.0.1:8080/v1/users/me -c 50 -d 10s -users 1000 -secret "$JWT_SECRET"
//
// Open loop at 20000 req/s (latencies corrected for coordinated omission):
//
//	load -url http://127.0.0.1:8080/v1/users/me -c 50 -d 10s -rate 20000 -tokens tokens.txt -json out.json
//
// It prints a progress line every second on stderr, a summary at the end
// and, with -json, the result as JSON ("-" for stdout).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gatewayd/gatewayd/bench/loadgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	*h = append(*h, v)
	return nil
}

// errUsage reports flag combinations that cannot work.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var headers headerFlags
	target := fs.String("url", "", "target URL (http://host:port/path)")
	conns := fs.Int("c", 50, "connections")
	dur := fs.Duration("d", 10*time.Second, "duration")
	rate := fs.Float64("rate", 0, "open-loop request rate per second across all connections (0: closed loop)")
	method := fs.String("method", "GET", "request method")
	body := fs.String("body", "", "request body")
	fs.Var(&headers, "H", `extra request header "Name: value" (repeatable)`)
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout")
	perConn := fs.Int("requests-per-conn", 0, "reconnect after this many requests per connection (0: keep the connection)")
	users := fs.Int("users", 0, "mint access tokens for this many users and spread requests over them")
	secret := fs.String("secret", "", "HS256 secret for -users (default: $JWT_SECRET)")
	issuer := fs.String("issuer", "gatewayd-auth", "iss claim of minted tokens")
	audience := fs.String("audience", "api", "aud claim of minted tokens")
	role := fs.String("role", "user", "role claim of minted tokens")
	ttl := fs.Duration("token-ttl", time.Hour, "lifetime of minted tokens")
	tokensFile := fs.String("tokens", "", "read bearer tokens from this file (one per line) instead of minting")
	writeTokens := fs.String("write-tokens", "", "write the minted tokens to this file")
	jsonOut := fs.String("json", "", `write the result as JSON to this file ("-": stdout)`)
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *target == "" {
		fmt.Fprintln(stderr, "load: -url is required")
		fs.Usage()
		return 2
	}
	toks, err := tokens(*tokensFile, *users, *secret, *issuer, *audience, *role, *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	if *writeTokens != "" && len(toks) > 0 {
		if err := writeTokenFile(*writeTokens, toks); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 1
		}
	}
	opts := loadgen.Options{
		URL:             *target,
		Method:          *method,
		Headers:         headers,
		Body:            []byte(*body),
		Tokens:          toks,
		Connections:     *conns,
		Duration:        *dur,
		Rate:            *rate,
		Timeout:         *timeout,
		RequestsPerConn: *perConn,
	}
	if !*quiet {
		opts.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return 2
	}
	summary := stdout
	if *jsonOut == "-" {
		summary = stderr
	}
	fmt.Fprint(summary, res.Text())
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, stdout, res); err != nil {
			fmt.Fprintln(stderr, "load:", err)
			return 1
		}
	}
	return 0
}

func tokens(file string, users int, secret, issuer, audience, role string, ttl time.Duration) ([]string, error) {
	switch {
	case file != "" && users > 0:
		return nil, fmt.Errorf("%w: -tokens and -users exclude each other", errUsage)
	case file != "":
		return loadgen.ReadTokensFile(file)
	case users <= 0:
		return nil, nil
	}
	if secret == "" {
		secret = os.Getenv("JWT_SECRET")
	}
	if secret == "" {
		return nil, fmt.Errorf("%w: -users needs -secret or $JWT_SECRET", errUsage)
	}
	return loadgen.MintTokens(loadgen.TokenOptions{
		Secret: []byte(secret), Issuer: issuer, Audience: audience, Role: role, Users: users, TTL: ttl,
	})
}

func writeTokenFile(path string, toks []string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	if err := loadgen.WriteTokens(f, toks); err != nil {
		_ = f.Close()
		return fmt.Errorf("write tokens: %w", err)
	}
	return f.Close()
}

func writeJSON(path string, stdout io.Writer, res *loadgen.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}
