package jwt

import (
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// TestCacheMemoryPerEntry fills the verified-token cache with distinct
// tokens through Handle and measures the live heap each cached token costs:
// the token itself (the map key) plus what it said. The figure beyond the
// token bytes is what a cache of N users costs over the tokens it holds.
func TestCacheMemoryPerEntry(t *testing.T) {
	const n = 1000
	tests := []struct {
		name string
		// giveSetup returns a plugin and n distinct tokens of one shape
		// it accepts.
		giveSetup func(t *testing.T) (*Plugin, []string)
		// wantMax is the most a cached token may cost beyond its bytes.
		wantMax int
	}{
		{
			name: "HS256 with forwarded claims",
			giveSetup: func(t *testing.T) (*Plugin, []string) {
				toks := make([]string, n)
				for i := range toks {
					id := strconv.Itoa(i)
					toks[i] = mint(t, jwtlib.SigningMethodHS256, []byte(testSecret),
						with(claims(), "sub", "user-"+id, "jti", "jti-"+id, "email", "user-"+id+"@example.com"), "")
				}
				return mustBuild(t, hsConfig, newClock(t0).env("mem-hs")), toks
			},
			// 376 measured; 627 before the entry kept one buffer.
			wantMax: 480,
		},
		{
			name: "Keycloak ES256 with nested roles",
			giveSetup: func(t *testing.T) (*Plugin, []string) {
				f := newIdPFixture(t, "mem-kc")
				toks := make([]string, n)
				for i := range toks {
					id := strconv.Itoa(i)
					toks[i] = f.keycloakToken(t, jwtlib.SigningMethodES256, f.keycloakEC, "kc-ec",
						"sub", "0d8a7c4e-1f2b-4a6c-9e3d-"+id, "jti", "onrtac:5f2c8a71-"+id)
				}
				return f.p, toks
			},
			// 459 measured; 863 before the entry kept one buffer.
			wantMax: 600,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, toks := tt.giveSetup(t)
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/v1/users/me")
			reqctx.Acquire(&ctx)
			handle := func(p *Plugin, tok string) {
				ctx.Request.Header.Set("Authorization", "Bearer "+tok)
				if got := p.Handle(&ctx); got != plugins.Next {
					t.Fatalf("refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
			// The first token sizes the request's buffers and whatever
			// the parser sets up once; it stays out of the count.
			handle(p, toks[0])
			before := liveHeap()
			for _, tok := range toks[1:] {
				handle(p, tok)
			}
			after := liveHeap()
			if got := p.cache.len(); got != n {
				t.Fatalf("cache holds %d tokens, want %d", got, n)
			}
			tokBytes := 0
			for _, tok := range toks[1:] {
				tokBytes += len(tok)
			}
			per := float64(after-before) / float64(n-1)
			beyond := per - float64(tokBytes)/float64(n-1)
			t.Logf("%.0f bytes per cached token, %.0f beyond its %.0f bytes", per, beyond, float64(tokBytes)/float64(n-1))
			if beyond > float64(tt.wantMax) {
				t.Errorf("a cached token costs %.0f bytes beyond its own, want at most %d", beyond, tt.wantMax)
			}
			runtime.KeepAlive(p)
			runtime.KeepAlive(toks)
		})
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestCacheEntryForwardsFromOneBuffer checks the forwarded headers of an
// entry whose values sit in one buffer: present and absent claims
// interleaved, an empty string (forwarded empty), a value the subject
// already spells, lists, and spoofed headers of absent claims removed; the
// first request verifies, the second is a cache hit.
func TestCacheEntryForwardsFromOneBuffer(t *testing.T) {
	cfg := "secret: " + testSecret + `
issuer: gatewayd-auth
audience: api
forward_claims: {sub: X-User-ID, a: X-A, b: X-B, c: X-C, d: X-D, e: X-E, f: X-F}
`
	p := mustBuild(t, cfg, newClock(t0).env("mem-forward"))
	tok := mint(t, jwtlib.SigningMethodHS256, []byte(testSecret),
		with(claims(), "a", "", "c", "user-1", "d", []any{}, "e", []any{"x", 7.0, true}, "f", "ser"), "")
	tests := []struct {
		giveHeader string
		want       []string // nil: absent
	}{
		{giveHeader: "X-User-ID", want: []string{"user-1"}},
		{giveHeader: "X-A", want: []string{""}},
		{giveHeader: "X-B"},
		{giveHeader: "X-C", want: []string{"user-1"}},
		{giveHeader: "X-D"},
		{giveHeader: "X-E", want: []string{"x,7"}},
		{giveHeader: "X-F", want: []string{"ser"}},
	}
	for _, pass := range []string{"verified", "cached"} {
		res := run(t, p, func(r *fasthttp.Request) {
			r.Header.Set("Authorization", "Bearer "+tok)
			for _, tt := range tests {
				r.Header.Set(tt.giveHeader, "spoofed")
			}
		})
		if res.verdict != plugins.Next {
			t.Fatalf("%s: status %d %q", pass, res.status, res.message)
		}
		for _, tt := range tests {
			var got []string
			for _, v := range res.ctx.Request.Header.PeekAll(tt.giveHeader) {
				got = append(got, string(v))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: %s = %q, want %q", pass, tt.giveHeader, got, tt.want)
			}
		}
		if got := string(res.st.Identity.Subject); got != "user-1" {
			t.Errorf("%s: subject %q, want user-1", pass, got)
		}
		if got := string(res.st.Identity.JTI); got != "jti-1" {
			t.Errorf("%s: jti %q, want jti-1", pass, got)
		}
	}
}

// TestCacheEntriesShareSets checks that tokens with the same roles and
// scopes share one copy of them, and only those.
func TestCacheEntriesShareSets(t *testing.T) {
	p := mustBuild(t, hsConfig, newClock(t0).env("mem-sets"))
	mintFor := func(kv ...any) string {
		return mint(t, jwtlib.SigningMethodHS256, []byte(testSecret), with(claims(), kv...), "")
	}
	ann := mintFor("sub", "ann")
	bob := mintFor("sub", "bob")
	read := mintFor("sub", "cid", "scope", "users:read")
	none := mintFor("sub", "dan", "role", nil, "scope", nil)
	for _, tok := range []string{ann, bob, read, none} {
		if res := run(t, p, bearer(tok)); res.verdict != plugins.Next {
			t.Fatalf("status %d %q", res.status, res.message)
		}
	}
	entry := func(tok string) *entry { return p.cache.get([]byte(tok)) }
	if entry(ann).sets != entry(bob).sets {
		t.Error("two tokens with the same roles and scopes do not share them")
	}
	if entry(read).sets == entry(ann).sets {
		t.Error("tokens with other scopes share their sets")
	}
	if got := entry(read).sets; !slices.Equal(got.roles, []string{"admin"}) || !slices.Equal(got.scopes, []string{"users:read"}) {
		t.Errorf("sets %q %q, want [admin] [users:read]", got.roles, got.scopes)
	}
	if got := entry(none).sets; got != nil {
		t.Errorf("a token without roles or scopes has sets %+v", got)
	}
	res := run(t, p, bearer(ann))
	id := res.st.Identity
	if !slices.Equal(id.Roles, []string{"admin"}) || !slices.Equal(id.Scopes, []string{"users:read", "users:write"}) {
		t.Errorf("identity roles %q scopes %q", id.Roles, id.Scopes)
	}
	if cap(id.Roles) != len(id.Roles) {
		t.Error("roles can be appended to in place, over the scopes")
	}
}

// TestSetTableIsBounded checks that sets past maxSharedSets are still
// returned, as copies of their own.
func TestSetTableIsBounded(t *testing.T) {
	var st setTable
	for i := range maxSharedSets + 10 {
		role := "role-" + strconv.Itoa(i)
		cs := st.get([]string{role}, []string{"read"})
		if !slices.Equal(cs.roles, []string{role}) || !slices.Equal(cs.scopes, []string{"read"}) {
			t.Fatalf("sets %q %q, want [%s] [read]", cs.roles, cs.scopes, role)
		}
	}
	if got := len(st.m); got != maxSharedSets {
		t.Errorf("table holds %d sets, want %d", got, maxSharedSets)
	}
	if a, b := st.get([]string{"a b"}, nil), st.get([]string{"a", "b"}, nil); a == b {
		t.Error("[a b] and [a, b] share one entry")
	}
}
