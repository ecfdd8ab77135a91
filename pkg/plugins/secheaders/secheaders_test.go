package secheaders

import (
	"crypto/tls"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, "routes[1].plugins[0].security-headers", src)
}

func mustBuild(t testing.TB, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(section(t, src), &plugins.Env{})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p.(*Plugin)
}

func TestKind(t *testing.T) {
	if got := (Factory{}).Kind(); got != "security-headers" {
		t.Errorf("Kind() = %q", got)
	}
}

func TestBuildErrors(t *testing.T) {
	const at = "routes[1].plugins[0].security-headers."
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{
			name:     "frame_options",
			giveYAML: "frame_options: ALLOW-FROM https://a.example",
			wantErrs: []string{`gateway.yaml:1: ` + at + `frame_options: expected DENY, SAMEORIGIN or off, got "ALLOW-FROM https://a.example" (ALLOW-FROM is obsolete: use csp with frame-ancestors)`},
		},
		{
			name:     "frame_options typo",
			giveYAML: "frame_options: SAME-ORIGIN",
			wantErrs: []string{`gateway.yaml:1: ` + at + `frame_options: expected DENY, SAMEORIGIN or off, got "SAME-ORIGIN"`},
		},
		{
			name:     "referrer_policy",
			giveYAML: "referrer_policy: strict",
			wantErrs: []string{`gateway.yaml:1: ` + at + `referrer_policy: unknown policy "strict" (expected one of no-referrer, no-referrer-when-downgrade, origin, origin-when-cross-origin, same-origin, strict-origin, strict-origin-when-cross-origin, unsafe-url, or off)`},
		},
		{
			name:     "csp with a newline",
			giveYAML: "csp: \"default-src 'self'\\nscript-src evil\"",
			wantErrs: []string{`gateway.yaml:1: ` + at + `csp: must be one line without control characters`},
		},
		{
			name:     "hsts scalar",
			giveYAML: "hsts: always",
			wantErrs: []string{`gateway.yaml:1: ` + at + `hsts: expected true, false or a mapping {max_age, include_subdomains, preload}`},
		},
		{
			name:     "hsts unknown key",
			giveYAML: "hsts:\n  max_age: 1y\n  subdomains: true",
			wantErrs: []string{
				`gateway.yaml:2: ` + at + `hsts.max_age: expected a duration such as 500ms, 10s, 15m or 24h, got "1y"`,
				`gateway.yaml:3: ` + at + `hsts.subdomains: unknown field "subdomains" (known fields: include_subdomains, max_age, preload)`,
			},
		},
		{
			name:     "hsts preload requirements",
			giveYAML: "hsts: {max_age: 30d, preload: true}",
			wantErrs: []string{
				`gateway.yaml:1: ` + at + `hsts.max_age: preload needs a max_age of at least 365d, got 720h0m0s`,
				`gateway.yaml:1: ` + at + `hsts.include_subdomains: preload needs include_subdomains: true`,
			},
		},
		{
			name:     "nosniff type",
			giveYAML: "content_type_nosniff: yes",
			wantErrs: []string{`gateway.yaml:1: ` + at + `content_type_nosniff: expected true or false, got "yes"`},
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

var secHeaders = []string{
	"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy",
}

func TestOnResponse(t *testing.T) {
	defaults := map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "strict-origin-when-cross-origin",
	}
	withHSTS := func(m map[string]string, v string) map[string]string {
		out := map[string]string{"Strict-Transport-Security": v}
		for k, x := range m {
			out[k] = x
		}
		return out
	}
	tests := []struct {
		name        string
		giveYAML    string
		giveProto   string // X-Forwarded-Proto
		giveTLS     bool
		giveUp      map[string]string // upstream response headers
		wantHeaders map[string]string
	}{
		{name: "bare", wantHeaders: defaults},
		{
			name:        "upstream values are replaced",
			giveUp:      map[string]string{"X-Frame-Options": "ALLOWALL", "Referrer-Policy": "unsafe-url"},
			wantHeaders: defaults,
		},
		{name: "hsts true over plain HTTP is not sent", giveYAML: "hsts: true", wantHeaders: defaults},
		{name: "hsts true over TLS", giveYAML: "hsts: true", giveTLS: true, wantHeaders: withHSTS(defaults, "max-age=63072000")},
		{name: "hsts via X-Forwarded-Proto", giveYAML: "hsts: true", giveProto: "https", wantHeaders: withHSTS(defaults, "max-age=63072000")},
		{name: "X-Forwarded-Proto upper-case", giveYAML: "hsts: true", giveProto: "HTTPS", wantHeaders: withHSTS(defaults, "max-age=63072000")},
		{name: "X-Forwarded-Proto list uses the first hop", giveYAML: "hsts: true", giveProto: "https, http", wantHeaders: withHSTS(defaults, "max-age=63072000")},
		{name: "X-Forwarded-Proto http", giveYAML: "hsts: true", giveProto: "http, https", wantHeaders: defaults},
		{name: "X-Forwarded-Proto look-alike", giveYAML: "hsts: true", giveProto: "httpsx", wantHeaders: defaults},
		{name: "hsts false", giveYAML: "hsts: false", giveTLS: true, wantHeaders: defaults},
		{
			name:        "hsts mapping",
			giveYAML:    "hsts: {max_age: 365d, include_subdomains: true, preload: true}",
			giveTLS:     true,
			wantHeaders: withHSTS(defaults, "max-age=31536000; includeSubDomains; preload"),
		},
		{
			name:        "hsts mapping with defaults",
			giveYAML:    "hsts: {include_subdomains: true}",
			giveTLS:     true,
			wantHeaders: withHSTS(defaults, "max-age=63072000; includeSubDomains"),
		},
		{
			name:        "everything set",
			giveYAML:    "frame_options: sameorigin\nreferrer_policy: no-referrer, strict-origin\ncsp: \"default-src 'self'; frame-ancestors 'none'\"",
			wantHeaders: map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer, strict-origin", "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"},
		},
		{
			name:        "everything off keeps the upstream's",
			giveYAML:    "frame_options: off\nreferrer_policy: off\ncontent_type_nosniff: false",
			giveUp:      map[string]string{"X-Frame-Options": "SAMEORIGIN"},
			wantHeaders: map[string]string{"X-Frame-Options": "SAMEORIGIN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.giveYAML)
			ctx := newCtx(t, tt.giveTLS)
			if tt.giveProto != "" {
				ctx.Request.Header.Set("X-Forwarded-Proto", tt.giveProto)
			}
			if p.Handle(ctx) != plugins.Next {
				t.Fatal("Handle did not pass the request on")
			}
			for k, v := range tt.giveUp {
				ctx.Response.Header.Set(k, v)
			}
			p.OnResponse(ctx)
			for _, k := range secHeaders {
				if got := string(ctx.Response.Header.Peek(k)); got != tt.wantHeaders[k] {
					t.Errorf("%s = %q, want %q", k, got, tt.wantHeaders[k])
				}
			}
		})
	}
}

// newCtx returns a request context, on a real TLS connection when tls is set
// (what ctx.IsTLS looks at).
func newCtx(t *testing.T, useTLS bool) *fasthttp.RequestCtx {
	t.Helper()
	ctx := new(fasthttp.RequestCtx)
	if !useTLS {
		return ctx
	}
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	conn := tls.Server(server, &tls.Config{MinVersion: tls.VersionTLS12})
	ctx.Init2(conn, nil, false)
	if !ctx.IsTLS() {
		t.Fatal("context is not on TLS")
	}
	return ctx
}

func TestErrorResponsesGetHeaders(t *testing.T) {
	p := mustBuild(t, "hsts: true")
	ctx := newCtx(t, false)
	ctx.Request.Header.Set("X-Forwarded-Proto", "https")
	ctx.Response.SetStatusCode(502)
	p.OnResponse(ctx)
	if got := string(ctx.Response.Header.Peek("X-Frame-Options")); got != "DENY" {
		t.Errorf("X-Frame-Options = %q on a 502", got)
	}
	if got := string(ctx.Response.Header.Peek("Strict-Transport-Security")); got != "max-age=63072000" {
		t.Errorf("Strict-Transport-Security = %q on a 502", got)
	}
}

// TestReadmeListsSettings checks every YAML key is documented.
func TestReadmeListsSettings(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(config.FieldNames(Settings{}), config.FieldNames(HSTS{})...) {
		if !strings.Contains(string(data), "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
