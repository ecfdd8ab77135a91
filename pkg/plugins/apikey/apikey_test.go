package apikey

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

// The keys of the tests (random-looking, as Generate makes them).
const (
	ciKey      = "gwk_Vq3rN8cKx2LmT5wYb7Hj0dFz4pS9aE1uGi6oRk_XyQ"
	readerKey  = "gwk_h2Jp5uQ8mZ0bW3vC7nT1xK4yR6sD9fA2gL5eP8iO_0M"
	expiredKey = "gwk_T8pL1mN4bV7cX0zQ3wE6rY9uI2oA5sD8fG1hJ4kL7_3Z"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func keysJSON() string {
	return `{"keys": [
  {"id": "ci-bot", "sha256": "` + Sum(ciKey) + `", "sub": "ci-bot", "roles": ["admin", "deploy"]},
  {"id": "reader", "sha256": "` + Sum(readerKey) + `", "sub": "svc-reader", "roles": ["reader"], "scopes": ["orders:read"], "expires": "2027-01-01T00:00:00Z"},
  {"id": "old", "sha256": "` + Sum(expiredKey) + `", "roles": ["admin"], "expires": "2026-01-01T00:00:00Z"}
]}
`
}

func writeKeys(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()) }

func build(t testing.TB, src string, env *plugins.Env) (*Plugin, error) {
	t.Helper()
	p, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].api-key", src), env)
	if err != nil {
		return nil, err
	}
	return p.(*Plugin), nil
}

func mustBuild(t testing.TB, src, route string) *Plugin {
	t.Helper()
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	p, err := build(t, src, &plugins.Env{Route: route, Now: c.now})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

type outcome struct {
	verdict plugins.Verdict
	status  int
	www     string
	message string
	st      *reqctx.State
	ctx     *fasthttp.RequestCtx
}

func send(t testing.TB, p *Plugin, uri string, hdr ...string) outcome {
	t.Helper()
	ctx := new(fasthttp.RequestCtx)
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Add(hdr[i], hdr[i+1])
	}
	st := reqctx.Acquire(ctx)
	out := outcome{verdict: p.Handle(ctx), status: ctx.Response.StatusCode(), st: st, ctx: ctx}
	out.www = string(ctx.Response.Header.Peek("WWW-Authenticate"))
	if out.verdict == plugins.Done {
		var body struct{ Error, Message string }
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil || body.Error != "unauthorized" {
			t.Fatalf("error body %q (%v)", ctx.Response.Body(), err)
		}
		out.message = body.Message
	}
	return out
}

func TestHandle(t *testing.T) {
	file := writeKeys(t, keysJSON())
	route := "apikey-handle"
	p := mustBuild(t, "keys_file: "+file, route)
	tests := []struct {
		name       string
		giveHeader []string
		wantMsg    string
		wantReason string
		wantSub    string
		wantRoles  []string
		wantScopes []string
	}{
		{name: "valid key", giveHeader: []string{"X-API-Key", ciKey}, wantSub: "ci-bot", wantRoles: []string{"admin", "deploy"}},
		{name: "valid key, header in another case", giveHeader: []string{"x-api-key", readerKey}, wantSub: "svc-reader", wantRoles: []string{"reader"}, wantScopes: []string{"orders:read"}},
		{name: "unknown key", giveHeader: []string{"X-API-Key", ciKey + "x"}, wantMsg: "invalid API key", wantReason: metrics.ReasonUnknownKey},
		{name: "expired key", giveHeader: []string{"X-API-Key", expiredKey}, wantMsg: "API key expired", wantReason: metrics.ReasonExpired},
		{name: "missing key", wantMsg: "missing API key", wantReason: metrics.ReasonMissing},
		{name: "empty key", giveHeader: []string{"X-API-Key", ""}, wantMsg: "missing API key", wantReason: metrics.ReasonMissing},
		{name: "two keys", giveHeader: []string{"X-API-Key", ciKey, "X-API-Key", readerKey}, wantMsg: "malformed API key", wantReason: metrics.ReasonMalformed},
		{name: "huge key", giveHeader: []string{"X-API-Key", strings.Repeat("k", 4096)}, wantMsg: "malformed API key", wantReason: metrics.ReasonMalformed},
		{name: "key in another header", giveHeader: []string{"Authorization", "Bearer " + ciKey}, wantMsg: "missing API key", wantReason: metrics.ReasonMissing},
		{name: "key in the query is not read in header mode", giveHeader: []string{"X-Other", "1"}, wantMsg: "missing API key", wantReason: metrics.ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before uint64
			if tt.wantReason != "" {
				before = metrics.ForRoute(route).AuthRejected(tt.wantReason).Get()
			}
			out := send(t, p, "/v1/deploy?api_key="+ciKey, append(tt.giveHeader, "X-User-ID", "spoofed")...)
			if tt.wantMsg != "" {
				if out.status != 401 || out.message != tt.wantMsg {
					t.Fatalf("got %d %q, want 401 %q", out.status, out.message, tt.wantMsg)
				}
				if !strings.HasPrefix(out.www, `APIKey realm="gatewayd"`) {
					t.Errorf("WWW-Authenticate %q", out.www)
				}
				if got := metrics.ForRoute(route).AuthRejected(tt.wantReason).Get(); got != before+1 {
					t.Errorf("gateway_auth_rejected_total{reason=%s} %d -> %d, want +1", tt.wantReason, before, got)
				}
				return
			}
			if out.verdict != plugins.Next {
				t.Fatalf("got %d %q, want accepted", out.status, out.message)
			}
			id := &out.st.Identity
			if !out.st.Authenticated || string(id.Subject) != tt.wantSub || !slices.Equal(id.Roles, tt.wantRoles) || !slices.Equal(id.Scopes, tt.wantScopes) {
				t.Errorf("identity %q %q %q (authenticated %v), want %q %q %q", id.Subject, id.Roles, id.Scopes, out.st.Authenticated, tt.wantSub, tt.wantRoles, tt.wantScopes)
			}
			if len(id.JTI) != 0 || len(out.st.Token) != 0 {
				t.Error("an API-key identity carries a token id or token")
			}
			if got := string(out.ctx.Request.Header.Peek("X-User-ID")); got != tt.wantSub {
				t.Errorf("X-User-ID %q, want %q", got, tt.wantSub)
			}
			if got := out.ctx.Request.Header.Peek("X-API-Key"); got != nil {
				t.Errorf("the key header reaches the upstream: %q", got)
			}
		})
	}
}

func TestHandleQuery(t *testing.T) {
	file := writeKeys(t, keysJSON())
	p := mustBuild(t, "query: api_key\nkeys_file: "+file, "apikey-query")
	tests := []struct {
		name    string
		giveURI string
		wantOK  bool
		wantURI string
	}{
		{name: "valid", giveURI: "/v1/x?a=1&api_key=" + ciKey + "&b=2", wantOK: true, wantURI: "/v1/x?a=1&b=2"},
		{name: "percent-encoded name", giveURI: "/v1/x?api%5Fkey=" + ciKey, wantOK: true, wantURI: "/v1/x"},
		{name: "unknown", giveURI: "/v1/x?api_key=nope"},
		{name: "twice", giveURI: "/v1/x?api_key=" + ciKey + "&api_key=" + ciKey},
		{name: "in a header instead", giveURI: "/v1/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := send(t, p, tt.giveURI, "X-API-Key", ciKey)
			if !tt.wantOK {
				if out.status != 401 {
					t.Fatalf("got %d, want 401", out.status)
				}
				return
			}
			if out.verdict != plugins.Next {
				t.Fatalf("got %d %q", out.status, out.message)
			}
			if got := string(out.ctx.Request.RequestURI()); got != tt.wantURI {
				t.Errorf("upstream URI %q, want %q", got, tt.wantURI)
			}
		})
	}
	t.Run("keep_credential", func(t *testing.T) {
		keep := mustBuild(t, "keys_file: "+file+"\nkeep_credential: true", "apikey-keep")
		out := send(t, keep, "/v1/x", "X-API-Key", ciKey)
		if out.verdict != plugins.Next || string(out.ctx.Request.Header.Peek("X-API-Key")) != ciKey {
			t.Fatalf("keep_credential: %d, header %q", out.status, out.ctx.Request.Header.Peek("X-API-Key"))
		}
	})
}

func TestOptional(t *testing.T) {
	file := writeKeys(t, keysJSON())
	p := mustBuild(t, "optional: true\nkeys_file: "+file, "apikey-optional")
	if p.Authenticates() {
		t.Error("optional instance claims to authenticate every request")
	}
	if out := send(t, p, "/"); out.verdict != plugins.Next || out.st.Authenticated {
		t.Errorf("no key: %v authenticated=%v, want anonymous pass", out.verdict, out.st.Authenticated)
	}
	if out := send(t, p, "/", "X-API-Key", "wrong"); out.status != 401 {
		t.Errorf("a bad key with optional: %d, want 401", out.status)
	}
}

// TestWithRBAC checks that rbac reads the key's roles and scopes.
func TestWithRBAC(t *testing.T) {
	file := writeKeys(t, keysJSON())
	p := mustBuild(t, "keys_file: "+file, "apikey-rbac")
	tests := []struct {
		giveRBAC, giveKey string
		wantStatus        int
	}{
		{"roles: [admin]", ciKey, 0},
		{"roles: [admin]", readerKey, 403},
		{"roles: [reader]\nscopes: [orders:read]", readerKey, 0},
		{"scopes: [orders:write]", readerKey, 403},
	}
	for _, tt := range tests {
		t.Run(tt.giveRBAC+"/"+tt.giveKey[:8], func(t *testing.T) {
			r, err := rbac.Factory{}.Build(plugintest.Section(t, "routes[0].plugins[1].rbac", tt.giveRBAC), &plugins.Env{Route: "apikey-rbac"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := new(fasthttp.RequestCtx)
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.Header.Set("X-API-Key", tt.giveKey)
			reqctx.Acquire(ctx)
			if p.Handle(ctx) != plugins.Next {
				t.Fatalf("api-key refused: %s", ctx.Response.Body())
			}
			v := r.Handle(ctx)
			if (tt.wantStatus == 0) != (v == plugins.Next) || (tt.wantStatus != 0 && ctx.Response.StatusCode() != tt.wantStatus) {
				t.Fatalf("rbac: %v %d, want %d", v, ctx.Response.StatusCode(), tt.wantStatus)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	good := writeKeys(t, keysJSON())
	const at = "gateway.yaml:1: routes[0].plugins[0].api-key."
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{name: "no keys_file", giveYAML: "header: X-Key", wantErrs: []string{`gateway.yaml:1: routes[0].plugins[0].api-key.keys_file: keys_file is required`}},
		{name: "header and query", giveYAML: "header: X-Key\nquery: k\nkeys_file: " + good, wantErrs: []string{"gateway.yaml:2: routes[0].plugins[0].api-key.query: set header or query, not both"}},
		{name: "reserved header", giveYAML: "header: Authorization\nkeys_file: " + good, wantErrs: []string{at + "header: header Authorization cannot carry an API key"}},
		{name: "forward header same as key header", giveYAML: "header: X-Key\nforward_header: x_key\nkeys_file: " + good, wantErrs: []string{"gateway.yaml:2: routes[0].plugins[0].api-key.forward_header: must differ from header"}},
		{name: "unreadable file", giveYAML: "keys_file: /nonexistent/keys.json", wantErrs: []string{at + "keys_file: cannot read the keys"}},
		{name: "typo", giveYAML: "keys_fil: x", wantErrs: []string{at + `keys_fil: unknown field "keys_fil" (did you mean "keys_file"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, tt.giveYAML, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			got := config.Errors(err)
			if len(got) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %q", err, tt.wantErrs)
			}
			for i, e := range got {
				if !strings.HasPrefix(e.Error(), tt.wantErrs[i]) {
					t.Errorf("error:\n got %s\nwant %s", e, tt.wantErrs[i])
				}
			}
		})
	}
}

// TestKeysFileErrors checks that mistakes in the keys file name the keys
// file, the line and the entry.
func TestKeysFileErrors(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantErrs []string
	}{
		{
			name: "json entry mistakes",
			give: `{"keys": [
  {"id": "a", "sha256": "abc"},
  {"id": "a", "sha256": "` + Sum(ciKey) + `", "expires": "tomorrow"},
  {"sha256": "` + Sum(ciKey) + `", "roles": ["two words"]}
]}`,
			wantErrs: []string{
				`keys.json:2: keys[0].sha256: expected the 64 hex digits of the key's SHA-256`,
				`keys.json:3: keys[1].id: id "a" is already keys[0]`,
				`keys.json:3: keys[1].expires: expected an RFC 3339 time such as 2027-01-01T00:00:00Z, got "tomorrow"`,
				`keys.json:4: keys[2].id: every key needs an id`,
				`keys.json:4: keys[2].sha256: the same key as "a"`,
				`keys.json:4: keys[2].roles[0]: a role is one non-empty word, got "two words"`,
			},
		},
		{
			name:     "yaml with an unknown field",
			give:     "keys:\n  - id: a\n    sha256: " + Sum(ciKey) + "\n    role: [admin]\n",
			wantErrs: []string{`keys.json:4: keys[0].role: unknown field "role" (did you mean "roles"?)`},
		},
		{name: "not a document", give: "{", wantErrs: []string{"keys.json: keys: not a JSON or YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeKeys(t, tt.give)
			_, err := build(t, "keys_file: "+file, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			got := config.Errors(err)
			if len(got) != len(tt.wantErrs) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(tt.wantErrs))
			}
			for i, e := range got {
				msg := strings.Replace(e.Error(), file, "keys.json", 1)
				if !strings.HasPrefix(msg, tt.wantErrs[i]) {
					t.Errorf("error:\n got %s\nwant %s", msg, tt.wantErrs[i])
				}
			}
		})
	}
}

func TestExpiredKeyWarning(t *testing.T) {
	file := writeKeys(t, keysJSON())
	var warnings []string
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	p, err := build(t, "keys_file: "+file, &plugins.Env{Now: c.now, Warn: func(w *config.Warning) { warnings = append(warnings, w.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `keys[2].expires: warning: key "old" expired at 2026-01-01T00:00:00Z`) {
		t.Errorf("warnings %q", warnings)
	}
	if got := p.sortedIDs(); !slices.Equal(got, []string{"ci-bot", "old", "reader"}) {
		t.Errorf("keys %q", got)
	}
	if fs := p.Files(); len(fs) != 1 || fs[0].Path != file {
		t.Errorf("Files() = %v", fs)
	}
	if got := p.ClaimHeaders(); !slices.Equal(got, []string{"X-User-ID"}) {
		t.Errorf("ClaimHeaders() = %q", got)
	}
}

func TestGenerate(t *testing.T) {
	k1, s1, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, _, _ := Generate(nil)
	if !strings.HasPrefix(k1, KeyPrefix) || len(k1) != len(KeyPrefix)+43 || k1 == k2 || s1 != Sum(k1) || len(s1) != 64 {
		t.Errorf("Generate() = %q %q", k1, s1)
	}
}

// TestKeysFileRelative checks that a relative keys_file is read next to
// the configuration file, whatever the working directory.
func TestKeysFileRelative(t *testing.T) {
	file := writeKeys(t, keysJSON())
	sec := plugintest.Section(t, "routes[0].plugins[0].api-key", "keys_file: keys.json")
	sec.File = filepath.Join(filepath.Dir(file), "gateway.yaml")
	p, err := Factory{}.Build(sec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*Plugin).Files()[0].Path; got != file {
		t.Errorf("read %s, want %s", got, file)
	}
}
