package blacklist

import (
	"context"
	"encoding/json"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Unix(1_700_000_000, 0)

func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, "routes[2].plugins[2].blacklist", src)
}

func mustBuild(t testing.TB, src string, env *plugins.Env) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(section(t, src), env)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p.(*Plugin)
}

func newMemory(t testing.TB, now func() time.Time) *memory.Store {
	t.Helper()
	s := memory.New(memory.WithClock(now))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestBuildErrors(t *testing.T) {
	mem := newMemory(t, time.Now)
	tests := []struct {
		name     string
		giveYAML string
		giveEnv  *plugins.Env
		wantErrs []string
	}{
		{
			name:     "on_store_error",
			giveYAML: "on_store_error: maybe",
			giveEnv:  &plugins.Env{Store: mem},
			wantErrs: []string{`gateway.yaml:1: routes[2].plugins[2].blacklist.on_store_error: expected deny or allow, got "maybe"`},
		},
		{
			name:     "store_timeout",
			giveYAML: "store_timeout: 0",
			giveEnv:  &plugins.Env{Store: mem},
			wantErrs: []string{`gateway.yaml:1: routes[2].plugins[2].blacklist.store_timeout: must be positive, got 0s`},
		},
		{
			name:     "unknown field",
			giveYAML: "cache_tll: 1s",
			giveEnv:  &plugins.Env{Store: mem},
			wantErrs: []string{`gateway.yaml:1: routes[2].plugins[2].blacklist.cache_tll: unknown field "cache_tll" (did you mean "cache_ttl"?)`},
		},
		{
			name:     "bad duration",
			giveYAML: "cache_ttl: soon",
			giveEnv:  &plugins.Env{Store: mem},
			wantErrs: []string{`gateway.yaml:1: routes[2].plugins[2].blacklist.cache_ttl: expected a duration such as 500ms, 10s, 15m or 24h, got "soon"`},
		},
		{
			name:     "no store",
			giveEnv:  &plugins.Env{},
			wantErrs: []string{`gateway.yaml: routes[2].plugins[2].blacklist: needs a revocation store, and none is configured`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.giveYAML), tt.giveEnv)
			var got []string
			for _, e := range config.Errors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
		})
	}
}

func TestBuildDefaultsAndRequires(t *testing.T) {
	mem := newMemory(t, time.Now)
	p := mustBuild(t, "", &plugins.Env{Route: "bl-defaults", Store: mem})
	if p.allow || p.maxStale != DefaultCacheTTL || p.timeout != DefaultStoreTimeout || !p.local {
		t.Errorf("defaults: allow=%v maxStale=%v timeout=%v local=%v", p.allow, p.maxStale, p.timeout, p.local)
	}
	if got := p.Requires(); !slices.Equal(got, []string{"jwt"}) {
		t.Errorf("Requires() = %q, want [jwt]", got)
	}
	p = mustBuild(t, "on_store_error: allow\ncache_ttl: 250ms\nstore_timeout: 20ms", &plugins.Env{Store: mem})
	if !p.allow || p.maxStale != 250*time.Millisecond || p.timeout != 20*time.Millisecond {
		t.Errorf("settings: allow=%v maxStale=%v timeout=%v", p.allow, p.maxStale, p.timeout)
	}
}

// identity describes the token a request carries ("" subject = anonymous).
type identity struct {
	subject, jti string
	iatMs        int64
	// noToken is an identity set without a token (an API key).
	noToken bool
}

type outcome struct {
	verdict plugins.Verdict
	status  int
	www     string
	code    string
	message string
}

func send(t testing.TB, p *Plugin, id identity) outcome {
	t.Helper()
	ctx := new(fasthttp.RequestCtx)
	st := reqctx.Acquire(ctx)
	st.RequestID = append(st.RequestID, "req-bl"...)
	if id.subject != "" {
		st.Authenticated = true
		st.Identity.Subject = []byte(id.subject)
		st.Identity.JTI = []byte(id.jti)
		st.Identity.IssuedAtMs = id.iatMs
		if !id.noToken {
			st.Token = append(st.Token, "header.payload.signature"...)
		}
	}
	out := outcome{verdict: p.Handle(ctx), status: ctx.Response.StatusCode()}
	out.www = string(ctx.Response.Header.Peek("WWW-Authenticate"))
	if out.verdict == plugins.Done {
		var body struct{ Error, Message, RequestID string }
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
			t.Fatalf("body %q: %v", ctx.Response.Body(), err)
		}
		out.code, out.message = body.Error, body.Message
	}
	return out
}

const revokedWWW = `Bearer error="invalid_token", error_description="token revoked"`

// TestHandleMemory checks revocation by jti and by revoke-all mark against
// the in-process store.
func TestHandleMemory(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	mem := newMemory(t, clock)
	ctx := context.Background()
	mark := t0.Add(-time.Minute)
	if err := mem.Revoke(ctx, "revoked-jti", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := mem.Revoke(ctx, "short-jti", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := mem.RevokeAll(ctx, "bob", mark, time.Hour); err != nil {
		t.Fatal(err)
	}
	route := "bl-memory"
	p := mustBuild(t, "", &plugins.Env{Route: route, Store: mem})
	tests := []struct {
		name        string
		give        identity
		giveAdvance time.Duration
		wantRevoked bool
	}{
		{name: "anonymous passes", give: identity{}},
		{name: "not revoked", give: identity{subject: "ann", jti: "jti-1", iatMs: t0.UnixMilli()}},
		{name: "jti revoked", give: identity{subject: "ann", jti: "revoked-jti", iatMs: t0.UnixMilli()}, wantRevoked: true},
		{name: "issued before the mark", give: identity{subject: "bob", jti: "jti-2", iatMs: mark.UnixMilli() - 5000}, wantRevoked: true},
		{name: "issued at the mark", give: identity{subject: "bob", jti: "jti-3", iatMs: mark.UnixMilli()}, wantRevoked: true},
		{name: "issued 1ms after the mark", give: identity{subject: "bob", jti: "jti-4", iatMs: mark.UnixMilli() + 1}},
		{name: "another user's mark", give: identity{subject: "carol", jti: "jti-5", iatMs: mark.UnixMilli() - 5000}},
		{name: "token without jti checks the mark", give: identity{subject: "bob", iatMs: mark.UnixMilli() - 1}, wantRevoked: true},
		{name: "identity without a token (api key) passes", give: identity{subject: "bob", noToken: true}},
		{name: "revocation ends with the token", give: identity{subject: "ann", jti: "short-jti", iatMs: t0.UnixMilli()}, giveAdvance: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now.Add(int64(tt.giveAdvance))
			before := metrics.ForRoute(route).AuthRejected(metrics.ReasonRevoked).Get()
			out := send(t, p, tt.give)
			after := metrics.ForRoute(route).AuthRejected(metrics.ReasonRevoked).Get()
			if !tt.wantRevoked {
				if out.verdict != plugins.Next {
					t.Fatalf("status %d %q, want pass", out.status, out.message)
				}
				if after != before {
					t.Error("revoked counter moved for a request that passed")
				}
				return
			}
			if out.verdict != plugins.Done || out.status != 401 || out.code != "unauthorized" || out.message != "token revoked" {
				t.Fatalf("got %v %d %q %q, want Done 401 unauthorized \"token revoked\"", out.verdict, out.status, out.code, out.message)
			}
			if out.www != revokedWWW {
				t.Errorf("WWW-Authenticate = %q, want %q", out.www, revokedWWW)
			}
			if after != before+1 {
				t.Errorf("gateway_auth_rejected_total{reason=revoked} %d -> %d, want +1", before, after)
			}
		})
	}
}

// TestHandleRedis checks the plugin against a real redis-server: answers,
// both store-error policies when the server is gone, and the deadline when
// the server hangs.
func TestHandleRedis(t *testing.T) {
	srv := redistest.Start(t, "--enable-debug-command", "local")
	rs, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	if _, ok := store.Store(rs).(store.Local); ok {
		t.Fatal("redis store claims to be local")
	}
	ctx := context.Background()
	if err := rs.Revoke(ctx, "revoked-jti", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	route := "bl-redis"
	deny := mustBuild(t, "store_timeout: 100ms", &plugins.Env{Route: route, Store: rs})
	allow := mustBuild(t, "on_store_error: allow\nstore_timeout: 100ms", &plugins.Env{Route: route, Store: rs})
	ok := identity{subject: "ann", jti: "jti-1", iatMs: time.Now().UnixMilli()}

	t.Run("revoked", func(t *testing.T) {
		out := send(t, deny, identity{subject: "ann", jti: "revoked-jti", iatMs: ok.iatMs})
		if out.status != 401 || out.message != "token revoked" || out.www != revokedWWW {
			t.Fatalf("got %d %q %q, want 401 token revoked", out.status, out.message, out.www)
		}
	})
	t.Run("not revoked", func(t *testing.T) {
		if out := send(t, deny, ok); out.verdict != plugins.Next {
			t.Fatalf("status %d %q, want pass", out.status, out.message)
		}
	})
	t.Run("revocation seen on the next request", func(t *testing.T) {
		id := identity{subject: "ann", jti: "jti-late", iatMs: ok.iatMs}
		if out := send(t, deny, id); out.verdict != plugins.Next {
			t.Fatalf("status %d before revocation", out.status)
		}
		if err := rs.Revoke(ctx, "jti-late", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if out := send(t, deny, id); out.status != 401 {
			t.Fatalf("status %d after revocation, want 401", out.status)
		}
	})
	t.Run("hung server: the deadline holds", func(t *testing.T) {
		srv.RequireOwned(t)
		done := make(chan error, 1)
		go func() {
			_, err := srv.Do("DEBUG", "SLEEP", "1.5")
			done <- err
		}()
		// Wait until the server is asleep: a fresh connection's PING blocks.
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		out := send(t, deny, identity{subject: "dave", jti: "jti-slow", iatMs: ok.iatMs})
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("request held %v while the server slept 1.5s", elapsed)
		}
		if out.status != 503 || out.code != "unavailable" || out.message != "revocation check unavailable" {
			t.Errorf("got %d %q %q, want 503 unavailable", out.status, out.code, out.message)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		srv.RequireOwned(t)
		srv.Kill()
		errsBefore := metrics.StoreErrors("revocation_check").Get()
		rejBefore := metrics.ForRoute(route).AuthRejected(metrics.ReasonStoreError).Get()
		out := send(t, deny, ok)
		if out.status != 503 || out.code != "unavailable" || out.message != "revocation check unavailable" {
			t.Errorf("deny: got %d %q %q, want 503 unavailable", out.status, out.code, out.message)
		}
		if out := send(t, allow, ok); out.verdict != plugins.Next {
			t.Errorf("allow: status %d %q, want pass", out.status, out.message)
		}
		if got := metrics.StoreErrors("revocation_check").Get() - errsBefore; got != 2 {
			t.Errorf("gateway_store_errors_total{op=revocation_check} +%d, want +2", got)
		}
		if got := metrics.ForRoute(route).AuthRejected(metrics.ReasonStoreError).Get() - rejBefore; got != 1 {
			t.Errorf("gateway_auth_rejected_total{reason=store_error} +%d, want +1", got)
		}
	})
}

// TestReadmeListsSettings checks every YAML key is documented.
func TestReadmeListsSettings(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.FieldNames(Settings{}) {
		if !strings.Contains(string(data), "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
