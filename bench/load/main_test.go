package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/bench/internal/upstreamsrv"
	"github.com/gatewayd/gatewayd/bench/loadgen"
)

const testSecret = "0PvJXlG-TO7TuL4xaqiXtUNiiEwmwnnPIdRGGSWhQ8N4O9Gq"

// startUpstream runs the bench/upstream server on a loopback port.
func startUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := upstreamsrv.Server(upstreamsrv.Options{Size: 128})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func readResult(t *testing.T, path string) loadgen.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var res loadgen.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, b)
	}
	return res
}

// TestClosedLoopWithMintedTokens runs the tool for about a second against
// the benchmark upstream and checks the counts it writes.
func TestClosedLoopWithMintedTokens(t *testing.T) {
	addr := startUpstream(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "result.json")
	toks := filepath.Join(dir, "tokens.txt")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", "http://" + addr + "/bench/hello", "-c", "4", "-d", "1s",
		"-users", "25", "-secret", testSecret, "-write-tokens", toks, "-json", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	res := readResult(t, out)
	if res.Mode != "closed" || res.Connections != 4 || res.Users != 25 {
		t.Fatalf("result %+v", res)
	}
	if res.Requests == 0 || res.Status["200"] != res.Requests || res.Non2xx != 0 || res.Errors != 0 {
		t.Fatalf("counts: requests %d, status %v, non-2xx %d, errors %d", res.Requests, res.Status, res.Non2xx, res.Errors)
	}
	if res.RPS <= 0 || res.Latency.Count != res.Requests || res.Latency.P99 < res.Latency.P50 {
		t.Fatalf("rate %v, latency %+v", res.RPS, res.Latency)
	}
	if !strings.Contains(stdout.String(), strconv.FormatUint(res.Requests, 10)+" responses") {
		t.Fatalf("summary does not report the responses:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "\r[") || !strings.Contains(stderr.String(), "req/s") {
		t.Fatalf("no progress line on stderr:\n%s", stderr.String())
	}
	written, err := loadgen.ReadTokensFile(toks)
	if err != nil || len(written) != 25 {
		t.Fatalf("tokens file: %d tokens, %v", len(written), err)
	}
}

// TestOpenLoopFromTokensFile reads tokens back from a file, runs open loop
// and writes the JSON to stdout.
func TestOpenLoopFromTokensFile(t *testing.T) {
	addr := startUpstream(t)
	toks := filepath.Join(t.TempDir(), "tokens.txt")
	minted, err := loadgen.MintTokens(loadgen.TokenOptions{Secret: []byte(testSecret), Users: 3, TTL: 3600e9})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(toks)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadgen.WriteTokens(f, minted); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", "http://" + addr + "/", "-c", "2", "-d", "500ms", "-rate", "200",
		"-tokens", toks, "-json", "-", "-quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var res loadgen.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, stdout.String())
	}
	if res.Mode != "open" || res.TargetRate != 200 || res.Users != 3 || res.ServiceTime == nil {
		t.Fatalf("result %+v", res)
	}
	if res.Requests == 0 || res.Status["200"] != res.Requests {
		t.Fatalf("requests %d, status %v", res.Requests, res.Status)
	}
	if strings.Contains(stderr.String(), "\r[") {
		t.Fatalf("-quiet printed progress:\n%s", stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		give []string
	}{
		{name: "no url", give: []string{"-d", "1s"}},
		{name: "users without secret", give: []string{"-url", "http://127.0.0.1:1/", "-users", "2"}},
		{name: "users and tokens", give: []string{"-url", "http://127.0.0.1:1/", "-users", "2", "-secret", testSecret, "-tokens", "x"}},
		{name: "bad url", give: []string{"-url", "ftp://x/", "-d", "1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JWT_SECRET", "")
			var stdout, stderr bytes.Buffer
			if code := run(tt.give, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr.String())
			}
			if stderr.Len() == 0 {
				t.Fatal("no message on stderr")
			}
		})
	}
}
