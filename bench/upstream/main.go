// Command upstream is the benchmark upstream: a fasthttp server answering
// every request with the same small JSON body, optionally after a fixed
// delay.
//
//	upstream -addr 127.0.0.1:9100 -size 64 -latency 0
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatewayd/gatewayd/bench/internal/upstreamsrv"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "listen address")
	size := fs.Int("size", upstreamsrv.DefaultSize, "response body size in bytes")
	latency := fs.Duration("latency", 0, "artificial delay before every response")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "upstream:", err)
		return 1
	}
	srv := upstreamsrv.Server(upstreamsrv.Options{Size: *size, Latency: *latency})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Shutdown()
	}()
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(stderr, "upstream:", err)
		return 1
	}
	return 0
}
