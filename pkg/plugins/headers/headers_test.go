package headers

import (
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

func mustBuild(t testing.TB, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].headers", src), &plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Plugin)
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{name: "empty", give: "", wantErr: "gateway.yaml: routes[0].plugins[0].headers: nothing to do"},
		{name: "unknown key with hint", give: "requst: {set: {A: b}}", wantErr: `gateway.yaml:1: routes[0].plugins[0].headers.requst: unknown field "requst" (did you mean "request"?)`},
		{name: "unknown edit", give: "request:\n  sett: {A: b}", wantErr: `gateway.yaml:2: routes[0].plugins[0].headers.request.sett: unknown field "sett" (did you mean "set"?)`},
		{name: "bad name", give: "request: {set: {\"X Bad\": v}}", wantErr: `gateway.yaml:1: routes[0].plugins[0].headers.request.set.X Bad: "X Bad" is not a header name`},
		{name: "CR LF in value", give: "response:\n  set:\n    X-A: \"a\\r\\nInjected: yes\"", wantErr: "gateway.yaml:3: routes[0].plugins[0].headers.response.set.X-A: value must not contain control characters"},
		{name: "NUL in value", give: "request: {add: {X-A: \"a\\0b\"}}", wantErr: "headers.request.add.X-A: value must not contain control characters"},
		{name: "content length", give: "response: {set: {Content-Length: \"1\"}}", wantErr: "Content-Length cannot be edited: the gateway sets it from the body"},
		{name: "transfer encoding remove", give: "request: {remove: [transfer-encoding]}", wantErr: "headers.request.remove[0]: transfer-encoding cannot be edited"},
		{name: "host set", give: "request: {set: {Host: example.com}}", wantErr: "Host cannot be edited: the upstream gets its target's host"},
		{name: "host remove", give: "request: {remove: [host]}", wantErr: "host cannot be edited"},
		{name: "xff set", give: "request: {set: {X-Forwarded-For: 1.2.3.4}}", wantErr: "X-Forwarded-For cannot be edited: the gateway sets it"},
		{name: "add single valued", give: "response: {add: {Content-Type: text/plain}}", wantErr: "Content-Type has a single value: use set"},
		{name: "same header twice", give: "request:\n  set: {X-A: a}\n  remove: [x_a]", wantErr: "gateway.yaml:2: routes[0].plugins[0].headers.request.set.X-A: X-A is already edited in remove"},
		{name: "not a mapping", give: "request: [a]", wantErr: "headers.request: expected a mapping of settings, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].headers", tt.give), &plugins.Env{})
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error\n%s\nwant it to contain\n%s", err, tt.wantErr)
			}
		})
	}
}

// The same names are fine on responses, and removing an identity header
// from the request is allowed.
func TestBuildAccepts(t *testing.T) {
	tests := []struct{ name, give string }{
		{name: "remove identity", give: "request: {remove: [X-User-ID]}"},
		{name: "response X-User", give: "response: {set: {X-User-Note: ok}}"},
		{name: "xff remove", give: "request: {remove: [X-Forwarded-For]}"},
		{name: "tab in value", give: "response: {set: {X-A: \"a\\tb\"}}"},
		{name: "empty value", give: "response: {set: {X-Empty: \"\"}}"},
		{name: "numeric value", give: "response: {set: {X-Version: 2}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { mustBuild(t, tt.give) })
	}
}

// X-User-* is refused whatever the gateway's matcher says.
func TestCheckHeadersXUser(t *testing.T) {
	p := mustBuild(t, "request:\n  set: {X-User-ID: admin}\n  add: {x_user_role: admin}\n  remove: [X-User-Email]\nresponse:\n  set: {X-User-Note: ok}")
	err := p.CheckHeaders(func(string) bool { return false })
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		"gateway.yaml:2: routes[0].plugins[0].headers.request.set.X-User-ID: X-User-ID is an identity header (X-User-*",
		"gateway.yaml:3: routes[0].plugins[0].headers.request.add.x_user_role: x_user_role is an identity header (X-User-*",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error\n%s\nwant it to contain\n%s", got, want)
		}
	}
	if strings.Contains(got, "X-User-Email") || strings.Contains(got, "X-User-Note") {
		t.Errorf("remove and response edits are not identity writes:\n%s", got)
	}
}

func TestCheckHeaders(t *testing.T) {
	p := mustBuild(t, "request:\n  set: {X-Tenant: acme, X-Env: prod}\n  add: {x_org: a}\n  remove: [X-Key-Owner]\nresponse:\n  set: {X-Tenant: shown}")
	claimed := map[string]bool{"x-tenant": true, "x-org": true, "x-key-owner": true}
	err := p.CheckHeaders(func(name string) bool { return claimed[fold(name)] })
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		"gateway.yaml:2: routes[0].plugins[0].headers.request.set.X-Tenant: X-Tenant is an identity header",
		"gateway.yaml:3: routes[0].plugins[0].headers.request.add.x_org: x_org is an identity header",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error\n%s\nwant it to contain\n%s", got, want)
		}
	}
	if strings.Contains(got, "X-Key-Owner") || strings.Contains(got, "response") {
		t.Errorf("remove and response edits are not identity writes:\n%s", got)
	}
	if err := mustBuild(t, "request: {set: {X-Env: prod}}").CheckHeaders(func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
}

func TestRequestEdits(t *testing.T) {
	p := mustBuild(t, `
request:
  set: { X-Env: prod, Accept: application/json }
  add: { X-Via: gatewayd }
  remove: [X-Debug, cookie]
`)
	var ctx fasthttp.RequestCtx
	h := &ctx.Request.Header
	h.Set("X-Env", "dev")
	h.Add("X-Env", "test")
	h.Set("x-debug", "1")
	h.Set("Cookie", "a=b")
	h.Set("X-Via", "edge")
	h.Set("Accept", "*/*")
	if v := p.Handle(&ctx); v != plugins.Next {
		t.Fatalf("verdict %v", v)
	}
	if got := h.PeekAll("X-Env"); len(got) != 1 || string(got[0]) != "prod" {
		t.Errorf("X-Env = %q, want [prod]", got)
	}
	if got := h.PeekAll("X-Via"); len(got) != 2 || string(got[0]) != "edge" || string(got[1]) != "gatewayd" {
		t.Errorf("X-Via = %q, want [edge gatewayd]", got)
	}
	if h.Peek("X-Debug") != nil || len(h.Peek("Cookie")) != 0 {
		t.Errorf("removed headers still there:\n%s", h.String())
	}
	if got := string(h.Peek("Accept")); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	// Response edits are not applied to the request direction.
	ctx.Response.Header.Set("X-Env", "up")
	p.OnResponse(&ctx)
	if got := string(ctx.Response.Header.Peek("X-Env")); got != "up" {
		t.Errorf("response X-Env = %q, want untouched", got)
	}
}

func TestResponseEdits(t *testing.T) {
	p := mustBuild(t, `
response:
  set: { Cache-Control: no-store, Content-Type: application/json; charset=utf-8 }
  add: { Set-Cookie: "seen=1; Path=/" }
  remove: [server, X-Powered-By]
`)
	var ctx fasthttp.RequestCtx
	h := &ctx.Response.Header
	h.Set("Server", "nginx")
	h.Set("X-Powered-By", "PHP")
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Content-Type", "application/json")
	h.Add("Set-Cookie", "sid=1; Path=/")
	p.Handle(&ctx)
	p.OnResponse(&ctx)
	if len(h.Peek("Server")) != 0 || h.Peek("X-Powered-By") != nil {
		t.Errorf("removed headers still there:\n%s", h.String())
	}
	if got := string(h.Peek("Cache-Control")); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
	if got := string(h.ContentType()); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := h.String(); !strings.Contains(got, "Set-Cookie: sid=1; Path=/\r\n") || !strings.Contains(got, "Set-Cookie: seen=1; Path=/\r\n") {
		t.Errorf("want both cookies:\n%s", got)
	}
}
