// Command demo-upstream is a small HTTP server that echoes every request it
// receives as JSON. `make run` starts it behind the gateway.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/valyala/fasthttp"
)

func main() {
	os.Exit(run())
}

func run() int {
	addr := flag.String("listen", "127.0.0.1:9002", "address to listen on")
	name := flag.String("name", "demo", "name reported in the echoed JSON")
	flag.Parse()
	s := &fasthttp.Server{Handler: echo.Handler(*name), Name: "demo-upstream"}
	errc := make(chan error, 1)
	go func() { errc <- s.ListenAndServe(*addr) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		return 1
	case <-sig:
		_ = s.Shutdown()
		return 0
	}
}
