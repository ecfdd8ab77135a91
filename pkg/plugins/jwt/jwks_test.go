package jwt

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// keyServer serves a JWK Set that the test can change or break.
type keyServer struct {
	*httptest.Server
	doc  atomic.Pointer[[]byte]
	fail atomic.Bool
	hits atomic.Int64
}

func newKeyServer(t *testing.T, doc []byte) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.set(doc)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ks.hits.Add(1)
		if ks.fail.Load() {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(*ks.doc.Load())
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(doc []byte) { ks.doc.Store(&doc) }

func TestJWKSURL(t *testing.T) {
	k := getKeys(t)
	srv := newKeyServer(t, jwksDoc(t, []string{"a"}, []any{&k.rsa.PublicKey}))
	clk := newClock(t0)
	route := "jwks-url"
	p := mustBuild(t, "algorithms: [RS256, EdDSA]\njwks_url: "+srv.URL+"/jwks.json\ncache_size: 0\n", clk.env(route))
	tokA := mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "a")
	tokB := mint(t, jwtlib.SigningMethodEdDSA, k.ed, claims(), "b")
	tokC := mint(t, jwtlib.SigningMethodRS256, k.rsa2, claims(), "c")

	expect := func(t *testing.T, tok, wantMsg string) {
		t.Helper()
		res := run(t, p, bearer(tok))
		switch {
		case wantMsg == "" && res.verdict != plugins.Next:
			t.Fatalf("status %d %q, want accepted", res.status, res.message)
		case wantMsg != "" && (res.status != fasthttp.StatusUnauthorized || res.message != wantMsg):
			t.Fatalf("status %d %q, want 401 %q", res.status, res.message, wantMsg)
		}
	}
	hits := func(t *testing.T, want int64) {
		t.Helper()
		if got := srv.hits.Load(); got != want {
			t.Fatalf("key server hit %d times, want %d", got, want)
		}
	}

	t.Run("initial fetch", func(t *testing.T) {
		hits(t, 1)
		expect(t, tokA, "")
		hits(t, 1)
	})
	t.Run("unknown kid refetches once the interval has passed", func(t *testing.T) {
		srv.set(jwksDoc(t, []string{"a", "b"}, []any{&k.rsa.PublicKey, k.ed.Public()}))
		clk.advance(DefaultJWKSRefetch)
		expect(t, tokB, "")
		hits(t, 2)
	})
	t.Run("unknown kids cannot hammer the key server", func(t *testing.T) {
		for range 5 {
			expect(t, tokC, "invalid token signature")
		}
		hits(t, 2)
		clk.advance(DefaultJWKSRefetch / 2)
		expect(t, tokC, "invalid token signature")
		hits(t, 2)
	})
	t.Run("failed refresh keeps the last good set", func(t *testing.T) {
		srv.fail.Store(true)
		if err := p.providers[0].remote.fetch(); err == nil {
			t.Fatal("fetch from a failing server succeeded")
		}
		hits(t, 3)
		clk.advance(DefaultJWKSRefetch)
		expect(t, tokC, "invalid token signature")
		hits(t, 4)
		expect(t, tokA, "")
		expect(t, tokB, "")
	})
	t.Run("undecodable set keeps the last good set", func(t *testing.T) {
		srv.fail.Store(false)
		srv.set([]byte(`{"keys": "nope"}`))
		if err := p.providers[0].remote.fetch(); err == nil {
			t.Fatal("fetch of a broken set succeeded")
		}
		expect(t, tokA, "")
	})
	t.Run("refresh installs a rotated set", func(t *testing.T) {
		srv.set(jwksDoc(t, []string{"c"}, []any{&k.rsa2.PublicKey}))
		if err := p.providers[0].remote.fetch(); err != nil {
			t.Fatal(err)
		}
		expect(t, tokC, "")
		expect(t, tokA, "invalid token signature")
	})
	if got := rejected(route, metrics.ReasonSignature); got == 0 {
		t.Error("signature rejections were not counted")
	}
}

// TestJWKSRotationInvalidatesCache checks that a token verified with a key
// that a refresh removed is re-verified (and refused) despite the cache.
func TestJWKSRotationInvalidatesCache(t *testing.T) {
	k := getKeys(t)
	srv := newKeyServer(t, jwksDoc(t, []string{"a"}, []any{&k.rsa.PublicKey}))
	p := mustBuild(t, "algorithms: [RS256]\njwks_url: "+srv.URL+"\n", newClock(t0).env("jwks-rotation"))
	tok := mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "a")
	for range 2 {
		if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
			t.Fatalf("status %d %q", res.status, res.message)
		}
	}
	srv.set(jwksDoc(t, []string{"b"}, []any{&k.rsa2.PublicKey}))
	if err := p.providers[0].remote.fetch(); err != nil {
		t.Fatal(err)
	}
	if res := run(t, p, bearer(tok)); res.status != fasthttp.StatusUnauthorized {
		t.Fatalf("token of a removed key: status %d, want 401", res.status)
	}
}

// TestJWKSUnreachableAtStart checks that an unreachable key server does not
// fail the build, refuses tokens, and is retried on demand.
func TestJWKSUnreachableAtStart(t *testing.T) {
	k := getKeys(t)
	srv := newKeyServer(t, jwksDoc(t, []string{"a"}, []any{&k.rsa.PublicKey}))
	srv.fail.Store(true)
	clk := newClock(t0)
	p := mustBuild(t, "algorithms: [RS256]\njwks_url: "+srv.URL+"\n", clk.env("jwks-down"))
	tok := mint(t, jwtlib.SigningMethodRS256, k.rsa, claims(), "a")
	if res := run(t, p, bearer(tok)); res.status != fasthttp.StatusUnauthorized {
		t.Fatalf("status %d, want 401 while no key set is loaded", res.status)
	}
	srv.fail.Store(false)
	clk.advance(DefaultJWKSRefetch)
	if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
		t.Fatalf("status %d %q after the key server came back", res.status, res.message)
	}
}

// TestJWKSSharedAcrossInstances checks that instances with the same URL
// share one downloader, which stops when the last one closes.
func TestJWKSSharedAcrossInstances(t *testing.T) {
	k := getKeys(t)
	srv := newKeyServer(t, jwksDoc(t, []string{"a"}, []any{&k.rsa.PublicKey}))
	env := newClock(t0).env("jwks-shared")
	cfg := "algorithms: [RS256]\njwks_url: " + srv.URL + "\njwks_refresh: 1m\n"
	a, err := Factory{}.Build(section(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Factory{}.Build(section(t, cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	if a.(*Plugin).providers[0].remote != b.(*Plugin).providers[0].remote || env.Resources.Len() != 1 || srv.hits.Load() != 1 {
		t.Fatalf("downloader not shared: %d resources, %d fetches", env.Resources.Len(), srv.hits.Load())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if env.Resources.Len() != 1 {
		t.Fatal("downloader released while an instance still uses it")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if env.Resources.Len() != 0 {
		t.Fatal("downloader kept after the last instance closed")
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	k := getKeys(t)
	srv := newKeyServer(t, jwksDoc(t, []string{"a"}, []any{&k.rsa.PublicKey}))
	// A short interval straight on the downloader: the setting's minimum
	// keeps real configurations at 10s or more.
	r := newRemoteKeys(remoteOptions{url: srv.URL, refresh: 20 * time.Millisecond, refetch: 10 * time.Millisecond, provider: "periodic"}, testLogger(), time.Now)
	defer r.Close()
	srv.set(jwksDoc(t, []string{"b"}, []any{&k.rsa2.PublicKey}))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ks, _ := r.keys(); ks != nil && ks.byKid["b"] != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh loop never installed the new set")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJWKSFetchErrorRedactsURL points jwks_url, with credentials in its
// userinfo and query, at a closed loopback port: neither the log lines of
// the failed fetch nor the error hold the credentials.
func TestJWKSFetchErrorRedactsURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	jwksURL := "http://user:pass@" + addr + "/jwks.json?api_key=SECRET"

	core, logs := observer.New(zap.DebugLevel)
	env := newClock(t0).env("redact")
	env.Logger = zap.New(core)
	p := mustBuild(t, "algorithms: [RS256]\njwks_url: \""+jwksURL+"\"\n", env)

	// The initial fetch has failed and been logged; a token naming an
	// unknown kid makes another fetch, whose error is logged too.
	p.providers[0].remote.lastAttempt.Store(0)
	if p.providers[0].remote.refetchUnknown() {
		t.Fatal("fetch from a closed port succeeded")
	}
	ferr := p.providers[0].remote.fetch()
	if ferr == nil {
		t.Fatal("fetch from a closed port succeeded")
	}
	var lines []string
	for _, e := range logs.All() {
		enc, err := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()).EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, enc.String())
	}
	if len(lines) < 2 {
		t.Fatalf("logged %d lines, want the failed initial fetch and refetch", len(lines))
	}
	for _, s := range append(lines, ferr.Error()) {
		if strings.Contains(s, "pass") || strings.Contains(s, "SECRET") {
			t.Errorf("credentials leaked: %s", s)
		}
		if !strings.Contains(s, addr) {
			t.Errorf("the redacted URL no longer names its host: %s", s)
		}
	}
}
