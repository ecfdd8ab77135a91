package chain

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/bench/internal/upstreamsrv"
	"github.com/gatewayd/gatewayd/bench/loadgen"
	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

const benchSecret = "uDi98J_UXzRwra6YU27nXIIrLawhqfiVbUb0Gj5eQ_YPX67m"

// The chain of the chain-* load scenarios; the limit is far above any
// benchmark's rate, so every request takes a token and none is refused.
const chainConfig = `
log: { access_log: false }
%s
upstreams:
  up: { targets: ["http://%s"], retries: 0 }
plugins:
  auth-jwt:
    type: jwt
    algorithms: [HS256]
    secret: "%s"
    issuer: gatewayd-auth
    audience: api
    forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email }
routes:
  - name: pass
    match: { path_prefix: /pass/ }
    upstream: up
  - name: chain
    match: { path_prefix: /chain/ }
    upstream: up
    plugins:
      - request-id
      - auth-jwt
      - blacklist
      - rbac: { roles: [user, admin] }
      - ratelimit: { key: user, limit: 1000000, period: 1s, sync: %s }
`

// users is how many distinct users' tokens the requests rotate through.
const users = 1000

// fixture is a gateway in front of a loopback upstream, with tokens.
type fixture struct {
	gw       *gateway.Gateway
	upstream string
	authz    [][]byte // "Bearer <token>" per user
}

// startUpstream serves the benchmark upstream on a loopback port.
func startUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := upstreamsrv.Server(upstreamsrv.Options{})
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// newFixture builds the gateway on the in-process store, or on a
// redis-server started for the test when withRedis is set, with the
// ratelimit plugin's default sync: exact.
func newFixture(tb testing.TB, withRedis bool) *fixture {
	tb.Helper()
	return newFixtureSync(tb, withRedis, "exact")
}

// newFixtureSync is newFixture with the ratelimit plugin's sync setting.
func newFixtureSync(tb testing.TB, withRedis bool, sync string) *fixture {
	tb.Helper()
	f := &fixture{upstream: startUpstream(tb)}
	redisSection := ""
	if withRedis {
		srv := redistest.Start(tb)
		redisSection = `redis: { addrs: ["` + srv.Addr() + `"] }`
	}
	cfg, err := config.Parse("chain.yaml", []byte(fmt.Sprintf(chainConfig, redisSection, f.upstream, benchSecret, sync)))
	if err != nil {
		tb.Fatal(err)
	}
	var st store.Store
	if cfg.Redis != nil {
		rs, err := redis.New(cfg.Redis)
		if err != nil {
			tb.Fatal(err)
		}
		// Behind the guard, as gatewayd runs it.
		st = redis.Guard(rs, cfg.Redis)
	} else {
		st = memory.New()
	}
	tb.Cleanup(func() { _ = st.Close() })
	f.gw, err = gateway.New(cfg, gateway.Options{Registry: builtin.Registry(), Logger: zap.NewNop(), Store: st, Version: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	f.authz = tokens(tb)
	return f
}

// tokens returns "Bearer <token>" for each user.
func tokens(tb testing.TB) [][]byte {
	tb.Helper()
	toks, err := loadgen.MintTokens(loadgen.TokenOptions{Secret: []byte(benchSecret), Issuer: "gatewayd-auth",
		Audience: "api", Role: "user", Users: users, TTL: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([][]byte, len(toks))
	for i, t := range toks {
		out[i] = []byte("Bearer " + t)
	}
	return out
}

var (
	peer      = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	hdrAuthz  = []byte("Authorization")
	methodGet = []byte("GET")
	hostBench = []byte("gw.bench")
	pathPass  = []byte("/pass/hello")
	pathChain = []byte("/chain/hello")
)

// newCtx returns a request context as fasthttp's server prepares it.
func newCtx() *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, peer, nil)
	return &ctx
}

// serve runs one request through the gateway on a reused ctx the way
// fasthttp's server does (response and user values reset afterwards) and
// returns the status.
func (f *fixture) serve(ctx *fasthttp.RequestCtx, path, authz []byte) int {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethodBytes(methodGet)
	ctx.Request.SetRequestURIBytes(path)
	ctx.Request.Header.SetHostBytes(hostBench)
	if authz != nil {
		ctx.Request.Header.SetBytesKV(hdrAuthz, authz)
	}
	f.gw.Handle(ctx)
	status := ctx.Response.StatusCode()
	ctx.Response.Reset()
	ctx.Request.ResetUserValues()
	return status
}

// warm sends every user's request once, so tokens are cached and buckets
// exist, as they are in a running gateway.
func (f *fixture) warm(tb testing.TB, ctx *fasthttp.RequestCtx, path []byte) {
	tb.Helper()
	f.warmFor(tb, ctx, path, 0)
}

// warmFor is warm repeated for at least d: ratelimit sync: lease sizes
// each user's batches from the rate it observed over the last second, so
// its steady state needs that much traffic first.
func (f *fixture) warmFor(tb testing.TB, ctx *fasthttp.RequestCtx, path []byte, d time.Duration) {
	tb.Helper()
	start := time.Now()
	for round := 0; round < 2 || time.Since(start) < d; round++ {
		for i, a := range f.authz {
			if s := f.serve(ctx, path, a); s != fasthttp.StatusOK {
				tb.Fatalf("warm-up request of user %d: status %d", i, s)
			}
		}
	}
}
