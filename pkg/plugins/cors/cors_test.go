package cors

import (
	"encoding/json"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, "routes[0].plugins[0].cors", src)
}

func mustBuild(t testing.TB, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(section(t, src), &plugins.Env{Route: "cors"})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p.(*Plugin)
}

func TestBuildErrors(t *testing.T) {
	const at = "routes[0].plugins[0].cors."
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{
			name:     "bare",
			wantErrs: []string{"gateway.yaml: " + at + "allowed_origins: at least one origin is required (e.g. [https://app.example.com])"},
		},
		{
			name:     "credentials with any origin",
			giveYAML: "allowed_origins: [\"*\"]\nallow_credentials: true",
			wantErrs: []string{`gateway.yaml:2: ` + at + `allow_credentials: cannot be true when allowed_origins has "*": browsers refuse credentials with a wildcard origin, list the origins instead`},
		},
		{
			name: "bad origins",
			giveYAML: "allowed_origins:\n  - https://app.example.com/\n  - app.example.com\n  - \"null\"\n" +
				"  - https://api.*.example.com\n  - https://*.example.com:port\n  - https://user@example.com\n",
			wantErrs: []string{
				`gateway.yaml:2: ` + at + `allowed_origins[0]: "https://app.example.com/" is not an origin: no user, path, query or trailing slash (expected scheme://host[:port], optionally scheme://*.domain[:port])`,
				`gateway.yaml:3: ` + at + `allowed_origins[1]: "app.example.com" is not an origin (expected scheme://host[:port], optionally scheme://*.domain[:port])`,
				`gateway.yaml:4: ` + at + `allowed_origins[2]: "null" is the origin of sandboxed and local documents, which anyone can create: it cannot be allowed`,
				`gateway.yaml:5: ` + at + `allowed_origins[3]: "https://api.*.example.com": a wildcard must be the first label of the host (expected scheme://host[:port], optionally scheme://*.domain[:port])`,
				`gateway.yaml:6: ` + at + `allowed_origins[4]: "https://*.example.com:port" is not an origin (expected scheme://host[:port], optionally scheme://*.domain[:port])`,
				`gateway.yaml:7: ` + at + `allowed_origins[5]: "https://user@example.com" is not an origin: no user, path, query or trailing slash (expected scheme://host[:port], optionally scheme://*.domain[:port])`,
			},
		},
		{
			name:     "methods",
			giveYAML: "allowed_origins: [https://a.example]\nallowed_methods: [GET, \"*\", \"BAD METHOD\"]",
			wantErrs: []string{
				`gateway.yaml:2: ` + at + `allowed_methods[1]: "*" is not accepted: list the methods`,
				`gateway.yaml:2: ` + at + `allowed_methods[2]: "BAD METHOD" is not an HTTP method`,
			},
		},
		{
			name:     "no methods",
			giveYAML: "allowed_origins: [https://a.example]\nallowed_methods: []",
			wantErrs: []string{`gateway.yaml:2: ` + at + `allowed_methods: at least one method is required`},
		},
		{
			name:     "headers",
			giveYAML: "allowed_origins: [https://a.example]\nallow_credentials: true\nallowed_headers: [\"X Y\"]\nexposed_headers: [\"*\", \"a:b\"]",
			wantErrs: []string{
				`gateway.yaml:3: ` + at + `allowed_headers[0]: "X Y" is not a header name`,
				`gateway.yaml:4: ` + at + `exposed_headers[0]: "*" is taken literally by browsers when allow_credentials is true: list the headers`,
				`gateway.yaml:4: ` + at + `exposed_headers[1]: "a:b" is not a header name`,
			},
		},
		{
			name:     "unknown field",
			giveYAML: "allowed_origin: [https://a.example]",
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[0].cors.allowed_origin: unknown field "allowed_origin" (did you mean "allowed_origins"?)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.giveYAML), &plugins.Env{})
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

func TestBuildAccepts(t *testing.T) {
	for _, o := range []string{
		"https://app.example.com", "http://localhost:3000", "https://[::1]:8443", "http://127.0.0.1",
		"capacitor://localhost", "chrome-extension://abcdefghij", "https://*.example.com", "HTTPS://App.Example.COM",
	} {
		t.Run(o, func(t *testing.T) { mustBuild(t, "allowed_origins: [\""+o+"\"]") })
	}
}

// exchange is one request through Handle and, as the gateway does, through
// OnResponse afterwards (with an upstream answer when Handle passed).
type exchange struct {
	method   string
	origin   string
	reqMeth  string // Access-Control-Request-Method
	reqHdrs  string // Access-Control-Request-Headers
	upstream map[string]string
}

type answer struct {
	verdict plugins.Verdict
	status  int
	headers map[string]string
	code    string
}

var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Methods",
	"Access-Control-Allow-Headers", "Access-Control-Expose-Headers", "Access-Control-Max-Age", "Vary",
}

func do(t *testing.T, p *Plugin, ex exchange) answer {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(ex.method)
	ctx.Request.SetRequestURI("/v1/users/")
	reqctx.Acquire(&ctx)
	set := func(k, v string) {
		if v != "" {
			ctx.Request.Header.Set(k, v)
		}
	}
	set("Origin", ex.origin)
	set("Access-Control-Request-Method", ex.reqMeth)
	set("Access-Control-Request-Headers", ex.reqHdrs)
	a := answer{verdict: p.Handle(&ctx)}
	if a.verdict == plugins.Next {
		ctx.Response.SetStatusCode(200)
		for k, v := range ex.upstream {
			ctx.Response.Header.Add(k, v)
		}
	}
	p.OnResponse(&ctx)
	a.status = ctx.Response.StatusCode()
	a.headers = map[string]string{}
	for _, k := range corsHeaders {
		if vals := ctx.Response.Header.PeekAll(k); len(vals) > 0 {
			var s []string
			for _, v := range vals {
				s = append(s, string(v))
			}
			a.headers[k] = strings.Join(s, " | ")
		}
	}
	if a.verdict == plugins.Done && a.status != 204 {
		var body struct{ Error string }
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
			t.Fatalf("body %q: %v", ctx.Response.Body(), err)
		}
		a.code = body.Error
	}
	return a
}

func TestHandle(t *testing.T) {
	const strict = `allowed_origins: [https://app.example.com, "https://*.example.org"]
allowed_methods: [GET, POST, DELETE]
allowed_headers: [Authorization, Content-Type, X-Request-ID]
exposed_headers: [X-Request-ID, RateLimit]
allow_credentials: true
max_age: 10m
`
	const open = "allowed_origins: [\"*\"]\nallowed_headers: [\"*\"]\n"
	vary := map[string]string{"Vary": "Origin"}
	preflightVary := "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	tests := []struct {
		name        string
		giveYAML    string
		give        exchange
		wantVerdict plugins.Verdict
		wantStatus  int
		wantCode    string
		wantHeaders map[string]string
	}{
		{
			name:        "no Origin: only Vary",
			giveYAML:    strict,
			give:        exchange{method: "GET"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "simple request from an allowed origin",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://app.example.com"},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "Origin",
			},
		},
		{
			name:     "upstream CORS headers are replaced and Vary extended",
			giveYAML: strict,
			give: exchange{method: "GET", origin: "https://app.example.com", upstream: map[string]string{
				"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "X-Secret", "Vary": "Accept-Encoding",
			}},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "Accept-Encoding | Origin",
			},
		},
		{
			name:        "upstream already varies on origin",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://app.example.com", upstream: map[string]string{"Vary": "accept-encoding, origin"}},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "accept-encoding, origin",
			},
		},
		{
			name:        "origin compared case-insensitively",
			giveYAML:    strict,
			give:        exchange{method: "POST", origin: "HTTPS://APP.example.com"},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "HTTPS://APP.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "Origin",
			},
		},
		{
			name:        "disallowed origin: forwarded, no CORS headers, upstream's removed",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://evil.example", upstream: map[string]string{"Access-Control-Allow-Origin": "*"}},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "origin with the allowed one as prefix",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://app.example.com.evil.net"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "origin on another port",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://app.example.com:8443"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "wildcard subdomain",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://eu.shop.example.org"},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://eu.shop.example.org", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "Origin",
			},
		},
		{
			name:        "wildcard does not match the bare domain",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://example.org"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "wildcard does not match a look-alike domain",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://evilexample.org"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "wildcard does not match another scheme",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "http://a.example.org"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "wildcard does not match an empty label",
			giveYAML:    strict,
			give:        exchange{method: "GET", origin: "https://a..example.org"},
			wantVerdict: plugins.Next, wantStatus: 200, wantHeaders: vary,
		},
		{
			name:        "preflight allowed",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://app.example.com", reqMeth: "DELETE", reqHdrs: "authorization, content-type"},
			wantVerdict: plugins.Done, wantStatus: 204,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "GET, POST, DELETE", "Access-Control-Allow-Headers": "authorization, content-type, x-request-id",
				"Access-Control-Max-Age": "600", "Vary": preflightVary,
			},
		},
		{
			name:        "preflight from a disallowed origin",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://evil.example", reqMeth: "GET"},
			wantVerdict: plugins.Done, wantStatus: 403, wantCode: "forbidden",
			wantHeaders: map[string]string{"Vary": preflightVary},
		},
		{
			name:        "preflight for a disallowed method",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://app.example.com", reqMeth: "PUT"},
			wantVerdict: plugins.Done, wantStatus: 403, wantCode: "forbidden",
			wantHeaders: map[string]string{"Vary": preflightVary},
		},
		{
			name:        "preflight method is case-sensitive",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://app.example.com", reqMeth: "delete"},
			wantVerdict: plugins.Done, wantStatus: 403, wantCode: "forbidden",
			wantHeaders: map[string]string{"Vary": preflightVary},
		},
		{
			name:        "preflight for a disallowed header",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://app.example.com", reqMeth: "GET", reqHdrs: "content-type,x-debug"},
			wantVerdict: plugins.Done, wantStatus: 403, wantCode: "forbidden",
			wantHeaders: map[string]string{"Vary": preflightVary},
		},
		{
			name:        "OPTIONS without Access-Control-Request-Method is forwarded",
			giveYAML:    strict,
			give:        exchange{method: "OPTIONS", origin: "https://app.example.com"},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Request-ID, RateLimit", "Vary": "Origin",
			},
		},
		{
			name:        "any origin without credentials answers *",
			giveYAML:    open,
			give:        exchange{method: "GET", origin: "https://anyone.example"},
			wantVerdict: plugins.Next, wantStatus: 200,
			wantHeaders: map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "Origin"},
		},
		{
			name:        "any header echoes the requested headers",
			giveYAML:    open,
			give:        exchange{method: "OPTIONS", origin: "https://anyone.example", reqMeth: "POST", reqHdrs: "x-anything, content-type"},
			wantVerdict: plugins.Done, wantStatus: 204,
			wantHeaders: map[string]string{
				"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, POST",
				"Access-Control-Allow-Headers": "x-anything, content-type", "Vary": preflightVary,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.giveYAML)
			got := do(t, p, tt.give)
			if got.verdict != tt.wantVerdict || got.status != tt.wantStatus || got.code != tt.wantCode {
				t.Errorf("verdict %v status %d code %q, want %v %d %q", got.verdict, got.status, got.code, tt.wantVerdict, tt.wantStatus, tt.wantCode)
			}
			for _, k := range corsHeaders {
				if got.headers[k] != tt.wantHeaders[k] {
					t.Errorf("%s = %q, want %q", k, got.headers[k], tt.wantHeaders[k])
				}
			}
		})
	}
}

// TestHeadersOnGatewayErrors checks that a response written by a later
// plugin (here a 401) still carries the CORS headers, so browsers can read
// the error.
func TestHeadersOnGatewayErrors(t *testing.T) {
	p := mustBuild(t, "allowed_origins: [https://app.example.com]\nexposed_headers: [WWW-Authenticate]")
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Origin", "https://app.example.com")
	reqctx.Acquire(&ctx)
	if p.Handle(&ctx) != plugins.Next {
		t.Fatal("simple request not passed on")
	}
	ctx.Response.SetStatusCode(401)
	ctx.Response.SetBodyString(`{"error":"unauthorized"}`)
	p.OnResponse(&ctx)
	if got := string(ctx.Response.Header.Peek("Access-Control-Allow-Origin")); got != "https://app.example.com" {
		t.Errorf("Access-Control-Allow-Origin = %q on a 401", got)
	}
	if got := string(ctx.Response.Header.Peek("Access-Control-Expose-Headers")); got != "WWW-Authenticate" {
		t.Errorf("Access-Control-Expose-Headers = %q on a 401", got)
	}
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
