package rbac

import (
	"encoding/json"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, "routes[3].plugins[3].rbac", src)
}

func mustBuild(t testing.TB, src, route string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(section(t, src), &plugins.Env{Route: route})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p.(*Plugin)
}

func TestBuildErrors(t *testing.T) {
	const at = "routes[3].plugins[3].rbac"
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{
			name:     "bare",
			wantErrs: []string{"gateway.yaml: " + at + ": needs roles, scopes or rules: an rbac entry that checks nothing would let every authenticated caller in"},
		},
		{
			name:     "all empty",
			giveYAML: "roles: []\nscopes: []",
			wantErrs: []string{"gateway.yaml:1: " + at + ": needs roles, scopes or rules: an rbac entry that checks nothing would let every authenticated caller in"},
		},
		{
			name:     "roles not a list",
			giveYAML: "roles: admin",
			wantErrs: []string{`gateway.yaml:1: ` + at + `.roles: expected a list, got "admin"`},
		},
		{
			name:     "unknown field",
			giveYAML: "role: [admin]",
			wantErrs: []string{`gateway.yaml:1: ` + at + `.role: unknown field "role" (did you mean "roles"?)`},
		},
		{
			name:     "empty role",
			giveYAML: "roles: [admin, \"\"]",
			wantErrs: []string{`gateway.yaml:1: ` + at + `.roles[1]: a role must not be empty`},
		},
		{
			name:     "scope with a space",
			giveYAML: "scopes:\n  - users:read\n  - \"users:write admin\"",
			wantErrs: []string{`gateway.yaml:3: ` + at + `.scopes[1]: "users:write admin": a scope cannot contain spaces (the scope claim is space-separated)`},
		},
		{
			name: "rule mistakes",
			giveYAML: "roles: [admin]\nrules:\n" +
				"  - methods: [GET, HEAD]\n    roles: [user]\n" +
				"  - methods: [get, \"PO ST\"]\n    scopes: [\"\"]\n" +
				"  - roles: [ops]\n",
			wantErrs: []string{
				`gateway.yaml:5: ` + at + `.rules[1].methods[0]: GET is already covered by rules[0] (the first matching rule wins)`,
				`gateway.yaml:5: ` + at + `.rules[1].methods[1]: "PO ST" is not an HTTP method`,
				`gateway.yaml:6: ` + at + `.rules[1].scopes[0]: a scope must not be empty`,
				`gateway.yaml:7: ` + at + `.rules[2].methods: at least one method is required`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.giveYAML), &plugins.Env{Route: "rbac-config"})
			var got []string
			for _, e := range config.Errors(err) {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.wantErrs, "\n     "))
			}
		})
	}
}

func TestRequires(t *testing.T) {
	p := mustBuild(t, "roles: [admin]", "rbac-requires")
	if got := p.Requires(); !slices.Equal(got, []string{plugins.Identity}) {
		t.Errorf("Requires() = %q, want [identity]", got)
	}
}

type caller struct {
	anonymous bool
	role      string
	scope     string
}

func TestHandle(t *testing.T) {
	const rules = `roles: [admin, ops]
rules:
  - methods: [GET, HEAD]
    roles: [admin, ops, user]
    scopes: [users:read]
  - methods: [delete]
    roles: [admin]
    scopes: [users:write, users:delete]
  - methods: [OPTIONS]
`
	tests := []struct {
		name       string
		giveYAML   string
		giveMethod string
		giveCaller caller
		wantStatus int // 0 = passes
	}{
		{name: "anonymous", giveYAML: "roles: [admin]", giveMethod: "GET", giveCaller: caller{anonymous: true}, wantStatus: 401},
		{name: "role allowed", giveYAML: "roles: [admin, ops]", giveMethod: "GET", giveCaller: caller{role: "ops"}},
		{name: "role refused", giveYAML: "roles: [admin, ops]", giveMethod: "GET", giveCaller: caller{role: "user"}, wantStatus: 403},
		{name: "no role claim", giveYAML: "roles: [admin]", giveMethod: "GET", giveCaller: caller{}, wantStatus: 403},
		{name: "role compared exactly", giveYAML: "roles: [admin]", giveMethod: "GET", giveCaller: caller{role: "Admin"}, wantStatus: 403},
		{name: "role prefix is not the role", giveYAML: "roles: [admin]", giveMethod: "GET", giveCaller: caller{role: "admin2"}, wantStatus: 403},
		{name: "all scopes present", giveYAML: "scopes: [users:read, users:write]", giveMethod: "GET", giveCaller: caller{scope: "openid users:write users:read"}},
		{name: "one scope missing", giveYAML: "scopes: [users:read, users:write]", giveMethod: "GET", giveCaller: caller{scope: "users:read"}, wantStatus: 403},
		{name: "scope prefix is not the scope", giveYAML: "scopes: [users:read]", giveMethod: "GET", giveCaller: caller{scope: "users:readonly"}, wantStatus: 403},
		{name: "scope as a substring is not the scope", giveYAML: "scopes: [read]", giveMethod: "GET", giveCaller: caller{scope: "users:read"}, wantStatus: 403},
		{name: "roles and scopes both needed", giveYAML: "roles: [admin]\nscopes: [x]", giveMethod: "GET", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "rule for GET lets a user read", giveYAML: rules, giveMethod: "GET", giveCaller: caller{role: "user", scope: "users:read"}},
		{name: "rule for GET needs its scope", giveYAML: rules, giveMethod: "GET", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "rule for HEAD", giveYAML: rules, giveMethod: "HEAD", giveCaller: caller{role: "user", scope: "users:read"}},
		{name: "rule for DELETE (written lower-case)", giveYAML: rules, giveMethod: "DELETE", giveCaller: caller{role: "admin", scope: "users:write users:delete"}},
		{name: "rule for DELETE refuses ops", giveYAML: rules, giveMethod: "DELETE", giveCaller: caller{role: "ops", scope: "users:write users:delete"}, wantStatus: 403},
		{name: "rule without requirements needs only a token", giveYAML: rules, giveMethod: "OPTIONS", giveCaller: caller{role: "guest"}},
		{name: "rule without requirements still needs a token", giveYAML: rules, giveMethod: "OPTIONS", giveCaller: caller{anonymous: true}, wantStatus: 401},
		{name: "other methods use the top level", giveYAML: rules, giveMethod: "POST", giveCaller: caller{role: "ops"}},
		{name: "top level refuses a user's POST", giveYAML: rules, giveMethod: "POST", giveCaller: caller{role: "user", scope: "users:read"}, wantStatus: 403},
		{name: "rules only: unlisted method denied", giveYAML: "rules:\n  - methods: [DELETE]\n    roles: [admin]", giveMethod: "PUT", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "rules only: listed method enforced", giveYAML: "rules:\n  - methods: [DELETE]\n    roles: [admin]", giveMethod: "DELETE", giveCaller: caller{role: "user"}, wantStatus: 403},
		{name: "rules only: listed method allowed", giveYAML: "rules:\n  - methods: [DELETE]\n    roles: [admin]", giveMethod: "DELETE", giveCaller: caller{role: "admin"}},
		{name: "rules only: GET rule covers HEAD", giveYAML: "rules:\n  - methods: [GET]\n    roles: [user]", giveMethod: "HEAD", giveCaller: caller{role: "user"}},
		{name: "rules only: GET rule refuses HEAD by role", giveYAML: "rules:\n  - methods: [GET]\n    roles: [admin]", giveMethod: "HEAD", giveCaller: caller{role: "user"}, wantStatus: 403},
		{name: "rules only: OPTIONS denied", giveYAML: "rules:\n  - methods: [GET, POST]", giveMethod: "OPTIONS", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "rules only: unknown method denied", giveYAML: "rules:\n  - methods: [GET, POST]", giveMethod: "FOO", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "rules only: lower-case method denied", giveYAML: "rules:\n  - methods: [GET, POST]", giveMethod: "get", giveCaller: caller{role: "admin"}, wantStatus: 403},
		{name: "own HEAD rule beats the GET rule", giveYAML: "rules:\n  - methods: [GET]\n    roles: [user]\n  - methods: [HEAD]\n    roles: [admin]", giveMethod: "HEAD", giveCaller: caller{role: "user"}, wantStatus: 403},
		{name: "GET rule covers HEAD before the top level", giveYAML: "roles: [admin]\nrules:\n  - methods: [GET]\n    roles: [user]", giveMethod: "HEAD", giveCaller: caller{role: "user"}},
		{name: "top level for unlisted methods", giveYAML: "roles: [admin]\nrules:\n  - methods: [GET]\n    roles: [user]", giveMethod: "FOO", giveCaller: caller{role: "admin"}},
		{name: "top level refuses unlisted methods", giveYAML: "roles: [admin]\nrules:\n  - methods: [GET]\n    roles: [user]", giveMethod: "PATCH", giveCaller: caller{role: "user"}, wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := "rbac-" + strings.ReplaceAll(tt.name, " ", "-")
			p := mustBuild(t, tt.giveYAML, route)
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tt.giveMethod)
			st := reqctx.Acquire(&ctx)
			st.RequestID = append(st.RequestID, "req-rbac"...)
			if !tt.giveCaller.anonymous {
				st.Authenticated = true
				st.Identity.Subject = []byte("user-1")
				st.Identity.Roles = strings.Fields(tt.giveCaller.role)
				st.Identity.Scopes = strings.Fields(tt.giveCaller.scope)
			}
			missing := metrics.ForRoute(route).AuthRejected(metrics.ReasonMissing)
			forbidden := metrics.ForRoute(route).AuthRejected(metrics.ReasonForbidden)
			verdict := p.Handle(&ctx)
			if tt.wantStatus == 0 {
				if verdict != plugins.Next {
					t.Fatalf("status %d %s, want pass", ctx.Response.StatusCode(), ctx.Response.Body())
				}
				if missing.Get()+forbidden.Get() != 0 {
					t.Error("a rejection was counted for a request that passed")
				}
				return
			}
			if verdict != plugins.Done || ctx.Response.StatusCode() != tt.wantStatus {
				t.Fatalf("verdict %v status %d, want Done %d", verdict, ctx.Response.StatusCode(), tt.wantStatus)
			}
			var body struct {
				Error, Message string
				RequestID      string `json:"request_id"`
			}
			if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
				t.Fatal(err)
			}
			www := string(ctx.Response.Header.Peek("WWW-Authenticate"))
			want := struct{ code, msg, www string }{"forbidden", "insufficient permissions", `Bearer error="insufficient_scope"`}
			counter := forbidden
			if tt.wantStatus == 401 {
				want = struct{ code, msg, www string }{"unauthorized", "authentication required", `Bearer realm="gatewayd"`}
				counter = missing
			}
			if body.Error != want.code || body.Message != want.msg || body.RequestID != "req-rbac" || www != want.www {
				t.Errorf("got %q %q %q, WWW-Authenticate %q; want %q %q req-rbac, %q", body.Error, body.Message, body.RequestID, www, want.code, want.msg, want.www)
			}
			if counter.Get() != 1 {
				t.Errorf("rejection counter = %d, want 1", counter.Get())
			}
		})
	}
}

func TestBuildWarnsAboutUncoveredMethods(t *testing.T) {
	const at = "gateway.yaml:3: routes[3].plugins[3].rbac.rules: warning: no top-level roles or scopes, and the rules do not cover "
	const tail = ": those requests are refused (403) for every caller; list them in a rule, or add top-level roles or scopes"
	tests := []struct {
		name        string
		giveYAML    string
		giveMethods []string
		want        string // "" = no warning
	}{
		{
			name:     "every method route",
			giveYAML: "rules:\n  - methods: [GET, POST]\n    roles: [user]",
			want:     at + "CONNECT, DELETE, OPTIONS, PATCH, PUT, TRACE and methods outside the standard ones" + tail,
		},
		{
			name:        "route methods all covered",
			giveYAML:    "rules:\n  - methods: [GET, POST]\n    roles: [user]",
			giveMethods: []string{"GET", "POST"},
		},
		{
			name:        "route method left out",
			giveYAML:    "rules:\n  - methods: [GET]\n    roles: [user]",
			giveMethods: []string{"GET", "DELETE"},
			want:        at + "DELETE" + tail,
		},
		{
			name:        "HEAD through GET rule",
			giveYAML:    "rules:\n  - methods: [GET]\n    roles: [user]",
			giveMethods: []string{"GET"},
		},
		{
			name:        "HEAD rule without GET",
			giveYAML:    "rules:\n  - methods: [HEAD]\n    roles: [user]",
			giveMethods: []string{"GET"},
			want:        at + "GET" + tail,
		},
		{
			name:     "top-level roles",
			giveYAML: "roles: [admin]\nrules:\n  - methods: [GET]\n    roles: [user]",
		},
		{
			name:     "no rules",
			giveYAML: "roles: [admin]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			env := &plugins.Env{Route: "rbac-warn", Methods: tt.giveMethods, Warn: func(w *config.Warning) { got = append(got, w.String()) }}
			if _, err := (Factory{}).Build(section(t, "\n"+tt.giveYAML), env); err != nil {
				t.Fatal(err)
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("warnings:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestReadmeListsSettings checks every YAML key is documented.
func TestReadmeListsSettings(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(config.FieldNames(Settings{}), config.FieldNames(Rule{})...) {
		if !strings.Contains(string(data), "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
