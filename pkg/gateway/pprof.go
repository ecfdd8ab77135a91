package gateway

import (
	"bytes"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

var (
	pprofPrefix = []byte("/debug/pprof")
	pprofIndex  = []byte("/debug/pprof/")
)

// servePprof serves Go's runtime profiles (net/http/pprof through
// fasthttp's pprofhandler): the index at /debug/pprof/, cmdline, profile
// (CPU, ?seconds=N), symbol, trace (?seconds=N) and the named profiles
// (heap, goroutine, allocs, block, mutex, threadcreate; ?debug=1 for
// text). Only the admin listener calls it, and only with admin.pprof: true.
func servePprof(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	if bytes.Equal(path, pprofPrefix) {
		// net/http's ServeMux redirects the bare prefix to the index.
		ctx.Redirect(string(pprofIndex), fasthttp.StatusMovedPermanently)
		return
	}
	if !bytes.HasPrefix(path, pprofIndex) {
		apierror.Write(ctx, fasthttp.StatusNotFound, apierror.CodeNotFound, "unknown admin endpoint")
		return
	}
	pprofhandler.PprofHandler(ctx)
}
