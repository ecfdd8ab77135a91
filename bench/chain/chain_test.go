package chain

import (
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// BenchmarkChain runs requests through Gateway.Handle, upstream included,
// on one reused ctx, with the tokens of 1000 users in turn (the jwt cache,
// the revocation lookups and the per-user buckets see many keys).
func BenchmarkChain(b *testing.B) {
	b.Run("passthrough", func(b *testing.B) {
		f := newFixture(b, false)
		benchServe(b, f, pathPass, false)
	})
	b.Run("memory", func(b *testing.B) {
		f := newFixture(b, false)
		benchServe(b, f, pathChain, true)
	})
	b.Run("memory-parallel", func(b *testing.B) {
		f := newFixture(b, false)
		f.warm(b, newCtx(), pathChain)
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := newCtx()
			i := int(next.Add(1) * 7919)
			for pb.Next() {
				i++
				if s := f.serve(ctx, pathChain, f.authz[i%len(f.authz)]); s != fasthttp.StatusOK {
					b.Errorf("status %d", s)
					return
				}
			}
		})
	})
	b.Run("redis", func(b *testing.B) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			b.Skip("redis-server not installed")
		}
		f := newFixture(b, true)
		benchServe(b, f, pathChain, true)
	})
	// The same chain with ratelimit sync: lease: in steady state the
	// limiter admits from local leases, renewed in the background. The
	// batches follow each user's rate over the last second, so it warms up
	// for 2 s first.
	b.Run("redis-lease", func(b *testing.B) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			b.Skip("redis-server not installed")
		}
		f := newFixtureSync(b, true, "lease")
		f.warmFor(b, newCtx(), pathChain, 2*time.Second)
		benchServe(b, f, pathChain, true)
	})
}

func benchServe(b *testing.B, f *fixture, path []byte, withTokens bool) {
	ctx := newCtx()
	if withTokens {
		f.warm(b, ctx, path)
	}
	var authz []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if withTokens {
			authz = f.authz[i%len(f.authz)]
		}
		if s := f.serve(ctx, path, authz); s != fasthttp.StatusOK {
			b.Fatalf("status %d", s)
		}
	}
}

// chainEntries is the chain of the chain-* scenarios as factory input.
var chainEntries = []struct{ kind, settings string }{
	{"request-id", ""},
	{"jwt", `{ algorithms: [HS256], secret: "` + benchSecret + `", issuer: gatewayd-auth, audience: api,
	          forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email } }`},
	{"blacklist", ""},
	{"rbac", "{ roles: [user, admin] }"},
	{"ratelimit", "{ key: user, limit: 1000000, period: 1s }"},
}

// pluginChain builds the chain from the registered factories, the way the
// gateway builds a route, without a route table or an upstream.
func pluginChain(tb testing.TB, st store.Store) *plugins.Chain {
	tb.Helper()
	reg := builtin.Registry()
	env := &plugins.Env{Route: "chain", Store: st, Logger: zap.NewNop(), Resources: plugins.NewResources(), Now: time.Now}
	var ps []plugins.Plugin
	var kinds []string
	for _, e := range chainEntries {
		f, ok := reg.Lookup(e.kind)
		if !ok {
			tb.Fatalf("no factory %q", e.kind)
		}
		var node *yaml.Node
		if e.settings != "" {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(e.settings), &doc); err != nil {
				tb.Fatal(err)
			}
			node = doc.Content[0]
		}
		p, err := f.Build(config.Section{File: "chain.yaml", Path: "chain." + e.kind, Node: node}, env)
		if err != nil {
			tb.Fatalf("build %s: %v", e.kind, err)
		}
		ps = append(ps, p)
		kinds = append(kinds, e.kind)
	}
	c := plugins.NewChain(ps, kinds)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

var clientIP = []byte("127.0.0.1")

// runChain runs one request through the chain and its response hooks as
// the gateway does, without forwarding it.
func runChain(c *plugins.Chain, ctx *fasthttp.RequestCtx, authz []byte) plugins.Verdict {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethodBytes(methodGet)
	ctx.Request.SetRequestURIBytes(pathChain)
	ctx.Request.Header.SetHostBytes(hostBench)
	ctx.Request.Header.SetBytesKV(hdrAuthz, authz)
	st := reqctx.Acquire(ctx)
	st.RequestID = requestid.Assign(st.RequestID, nil)
	st.ClientIP = append(st.ClientIP[:0], clientIP...)
	st.Route = "chain"
	v, ran := c.Handle(ctx)
	c.OnResponse(ctx, ran)
	ctx.Response.Reset()
	ctx.Request.ResetUserValues()
	return v
}

// BenchmarkPluginChain is the plugin chain alone on the in-process store:
// what the five plugins cost on top of a passthrough route.
func BenchmarkPluginChain(b *testing.B) {
	st := memory.New()
	b.Cleanup(func() { _ = st.Close() })
	c := pluginChain(b, st)
	authz := tokens(b)
	ctx := newCtx()
	for _, a := range authz {
		if runChain(c, ctx, a) != plugins.Next {
			b.Fatal("warm-up request refused")
		}
	}
	b.Run("memory", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if runChain(c, ctx, authz[i%len(authz)]) != plugins.Next {
				b.Fatalf("refused: %s", ctx.Response.Body())
			}
		}
	})
}

// BenchmarkServe serves the gateway on a loopback listener with a
// fasthttp.Server and drives it from parallel clients: the closest a Go
// benchmark gets to the load scenarios, for CPU profiles
// (-cpuprofile; see bench/README.md).
func BenchmarkServe(b *testing.B) {
	for _, bb := range []struct {
		name  string
		path  []byte
		chain bool
		redis bool
		sync  string
	}{
		{"passthrough", pathPass, false, false, "exact"},
		{"memory", pathChain, true, false, "exact"},
		{"redis", pathChain, true, true, "exact"},
		{"redis-lease", pathChain, true, true, "lease"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			if _, err := exec.LookPath("redis-server"); bb.redis && err != nil {
				b.Skip("redis-server not installed")
			}
			f := newFixtureSync(b, bb.redis, bb.sync)
			if bb.chain {
				f.warm(b, newCtx(), bb.path)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &fasthttp.Server{Handler: f.gw.Handle, NoDefaultServerHeader: true, NoDefaultContentType: true}
			go func() { _ = srv.Serve(ln) }()
			b.Cleanup(func() { _ = srv.Shutdown() })
			hc := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1024}
			b.Cleanup(hc.CloseIdleConnections)
			var next, refused atomic.Uint64
			var firstRefusal atomic.Value
			b.SetParallelism(25)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var req fasthttp.Request
				var resp fasthttp.Response
				req.SetRequestURIBytes(bb.path)
				req.Header.SetHostBytes(hostBench)
				i := int(next.Add(1) * 7919)
				for pb.Next() {
					i++
					req.Header.SetBytesKV(hdrAuthz, f.authz[i%len(f.authz)])
					if err := hc.Do(&req, &resp); err != nil {
						b.Error(err)
						return
					}
					if resp.StatusCode() != fasthttp.StatusOK {
						// A store call slower than store_timeout under this
						// load is answered 503 by blacklist (fail closed):
						// counted, not fatal.
						refused.Add(1)
						firstRefusal.CompareAndSwap(nil, strconv.Itoa(resp.StatusCode())+" "+string(resp.Body()))
					}
				}
			})
			b.ReportMetric(float64(refused.Load())/float64(b.N), "non200/op")
			if v := firstRefusal.Load(); v != nil {
				b.Logf("%d of %d requests refused, first: %s", refused.Load(), b.N, v)
			}
		})
	}
}
