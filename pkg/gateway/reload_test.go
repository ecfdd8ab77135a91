package gateway

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// countingFactory builds plugins that record Close calls and check that no
// request runs on a closed instance.
type countingFactory struct {
	built, closed atomic.Int64
	usedClosed    atomic.Int64
}

type countingPlugin struct {
	f      *countingFactory
	closes atomic.Int64
}

func (f *countingFactory) Kind() string { return "counting" }

func (f *countingFactory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	var s struct {
		Tag string `yaml:"tag"`
	}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	f.built.Add(1)
	return &countingPlugin{f: f}, nil
}

func (p *countingPlugin) Handle(ctx *fasthttp.RequestCtx) plugins.Verdict {
	if p.closes.Load() != 0 {
		p.f.usedClosed.Add(1)
	}
	time.Sleep(time.Millisecond) // widen the window for a reload to race
	if p.closes.Load() != 0 {
		p.f.usedClosed.Add(1)
	}
	return plugins.Next
}

func (p *countingPlugin) Close() error {
	if p.closes.Add(1) == 1 {
		p.f.closed.Add(1)
	}
	return nil
}

const unitConfig = `
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:1" }
log: { access_log: false }
upstreams:
  up: { targets: ["http://%s"] }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: up
    plugins: [request-id, { counting: { tag: "%s" } }]
`

func TestReloadClosesEachOldPluginOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*Client).mCleaner"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).workerFunc"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// Idle-connection cleaners exit on their own a few seconds after
		// the last connection closed.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"))
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	upLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = up.Serve(upLn) }()
	defer up.Shutdown()

	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	write := func(tag string) {
		body := strings.Replace(strings.Replace(unitConfig, "%s", upLn.Addr().String(), 1), "%s", tag, 1)
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("v0")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	cf := &countingFactory{}
	reg := builtin.Registry()
	reg.Register(cf)
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: reg, Logger: zap.NewNop(), Store: st, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ln := fasthttputil.NewInmemoryListener()
	adminLn := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ln, adminLn) }()

	client := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
	var wg sync.WaitGroup
	var failed atomic.Int64
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, _, err := client.Get(nil, "http://gw/x")
				if err != nil || status != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	const reloads = 30
	for i := 1; i <= reloads; i++ {
		write("v" + string(rune('a'+i%26)) + string(rune('0'+i%10)))
		if _, err := gw.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	// Every retired generation closes once its last request ended.
	deadline := time.Now().Add(5 * time.Second)
	for cf.closed.Load() < reloads && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := cf.closed.Load(); got != reloads {
		t.Fatalf("closed %d old instances, want %d (built %d)", got, reloads, cf.built.Load())
	}
	if n := cf.usedClosed.Load(); n != 0 {
		t.Fatalf("%d requests ran on a closed plugin", n)
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during reloads", n)
	}
	// An unchanged file is not rebuilt.
	before := cf.built.Load()
	if res, err := gw.Reload(); err != nil || !res.Unchanged || cf.built.Load() != before {
		t.Fatalf("unchanged reload rebuilt: %+v %v", res, err)
	}
	if err := gw.Shutdown(0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	<-done
	if got := cf.closed.Load(); got != reloads+1 {
		t.Fatalf("after shutdown closed %d, want %d", got, reloads+1)
	}
	if n := gw.deps.upstreams.len(); n != 0 {
		t.Fatalf("%d upstream pools still open after shutdown", n)
	}
}

// panicky is a plugin that panics, to prove the gateway survives it.
type panicky struct{}

func (panicky) Kind() string { return "panicky" }

func (panicky) Build(config.Section, *plugins.Env) (plugins.Plugin, error) { return panicky{}, nil }

func (panicky) Handle(*fasthttp.RequestCtx) plugins.Verdict { panic("plugin bug") }

func (panicky) Close() error { return nil }

func TestPanicInPluginAnswers500(t *testing.T) {
	reg := builtin.Registry()
	reg.Register(panicky{})
	cfg, err := config.Parse("p.yaml", []byte(`
upstreams: { up: { targets: ["http://127.0.0.1:1"] } }
routes: [{ name: r, match: { path_prefix: / }, upstream: up, plugins: [request-id, panicky] }]
`))
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	defer st.Close()
	gw, err := New(cfg, Options{Registry: reg, Logger: zap.NewNop(), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, benchAddr, nil)
	ctx.Request.SetRequestURI("/x")
	gw.Handle(&ctx)
	if ctx.Response.StatusCode() != 500 || !strings.Contains(string(ctx.Response.Body()), `"error":"internal"`) {
		t.Fatalf("got %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if n := gw.cur.Load().inflight.Load(); n != 0 {
		t.Fatalf("in-flight count %d after a panic", n)
	}
}
