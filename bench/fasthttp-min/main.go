// Command fasthttp-min is the smallest useful fasthttp reverse proxy: every
// request goes to one upstream with HostClient.Do, and nothing else
// happens. It is the practical ceiling of a gateway built on fasthttp.
//
//	fasthttp-min -addr 127.0.0.1:9200 -upstream 127.0.0.1:9100
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fasthttp-min", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9200", "listen address")
	upstream := fs.String("upstream", "127.0.0.1:9100", "upstream host:port")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	hc := &fasthttp.HostClient{
		Addr:                     *upstream,
		MaxConns:                 1024,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		ReadTimeout:              10 * time.Second,
		WriteTimeout:             10 * time.Second,
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error("bad gateway", fasthttp.StatusBadGateway)
			}
		},
		Name:                  "fasthttp-min",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "fasthttp-min:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Shutdown()
	}()
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(stderr, "fasthttp-min:", err)
		return 1
	}
	return 0
}
