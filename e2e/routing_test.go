package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// routingConfig has a stable and a canary upstream, a parameter route with
// a header-conditioned canary twin, both rewriting the path, a literal
// route beside the parameter, a rest parameter and a POST-only prefix
// below which the parameter route sits.
const routingConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
upstreams:
  stable: { targets: ["http://%s"] }
  canary: { targets: ["http://%s"] }
routes:
  - name: item
    match: { path: "/v1/items/{id}", methods: [GET, PUT] }
    upstream: stable
    rewrite: { path: "/internal/items/{id}" }
  - name: item-canary
    match:
      path: "/v1/items/{id}"
      methods: [GET]
      headers: { X-Canary: "1" }
    upstream: canary
    rewrite: { path: "/internal/items/{id}" }
  - name: item-new
    match: { path: /v1/items/new, methods: [GET] }
    upstream: stable
  - name: part
    match: { path: "/v1/tenants/{tenant}/items/{id}/parts/{part}", methods: [GET] }
    upstream: stable
    rewrite: { path: "/parts/{part}/items/{id}/tenants/{tenant}" }
  - name: files
    match: { path: "/files/{path...}", methods: [GET] }
    upstream: stable
    rewrite: { path: "/static/{path...}" }
  - name: v1-write
    match: { path_prefix: /v1/, methods: [POST] }
    upstream: stable
`

func startRouting(t *testing.T) *gatewaytest.Process {
	t.Helper()
	return gatewaytest.Start(t, fmt.Sprintf(routingConfig, startEcho(t, "stable"), startEcho(t, "canary")))
}

// rawEcho sends a raw GET (the path bytes exactly as given) and returns the
// status line and, for a 200, what the upstream saw.
func rawEcho(t *testing.T, gw *gatewaytest.Process, target string, headers ...string) (string, map[string]any) {
	t.Helper()
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	status, body, _ := rawRequest(t, gw.Addr, req+"\r\n")
	if !strings.HasPrefix(status, "200") {
		return status, nil
	}
	var e map[string]any
	i := strings.Index(body, "{")
	if i < 0 || json.Unmarshal([]byte(body[i:]), &e) != nil {
		t.Fatalf("GET %s: no echo body:\n%s", target, body)
	}
	return status, e
}

func TestRoutingCanaryByHeader(t *testing.T) {
	gw := startRouting(t)
	tests := []struct {
		name       string
		giveMethod string
		giveHeader map[string]string
		wantServer string
	}{
		{name: "no header", giveMethod: "GET", wantServer: "stable"},
		{name: "canary header", giveMethod: "GET", giveHeader: map[string]string{"X-Canary": "1"}, wantServer: "canary"},
		{name: "header name in lower case", giveMethod: "GET", giveHeader: map[string]string{"x-canary": "1"}, wantServer: "canary"},
		{name: "other value", giveMethod: "GET", giveHeader: map[string]string{"X-Canary": "0"}, wantServer: "stable"},
		{name: "value is exact", giveMethod: "GET", giveHeader: map[string]string{"X-Canary": "11"}, wantServer: "stable"},
		{name: "HEAD through GET", giveMethod: "HEAD", giveHeader: map[string]string{"X-Canary": "1"}, wantServer: "canary"},
		{name: "method the canary refuses", giveMethod: "PUT", giveHeader: map[string]string{"X-Canary": "1"}, wantServer: "stable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.giveMethod == "HEAD" {
				// No body to read the server from: check the route metric.
				r := do(t, "HEAD", gw.URL("/v1/items/42"), tt.giveHeader, "")
				if r.Status != 200 {
					t.Fatalf("status %d", r.Status)
				}
				if n := metricValue(t, gw, `http_requests_total{method="HEAD",route="item-canary",status_code="200"}`); n != 1 {
					t.Fatalf("HEAD requests counted on item-canary = %v, want 1", n)
				}
				return
			}
			e := decodeEcho(t, do(t, tt.giveMethod, gw.URL("/v1/items/42"), tt.giveHeader, ""))
			got = e.Server
			if got != tt.wantServer {
				t.Errorf("%s /v1/items/42 with %v reached %q, want %q", tt.giveMethod, tt.giveHeader, got, tt.wantServer)
			}
			if e.RawURI != "/internal/items/42" {
				t.Errorf("upstream saw %q, want /internal/items/42", e.RawURI)
			}
			for _, v := range tt.giveHeader {
				if header(e, "X-Canary") != v {
					t.Errorf("X-Canary upstream = %q, want %q forwarded unchanged", header(e, "X-Canary"), v)
				}
			}
		})
	}
}

func TestRoutingRewriteWithParameters(t *testing.T) {
	gw := startRouting(t)
	tests := []struct {
		name       string
		giveTarget string
		wantURI    string
	}{
		{name: "one parameter and the query", giveTarget: "/v1/items/42?x=1&y=%2F", wantURI: "/internal/items/42?x=1&y=%2F"},
		{name: "parameters reordered", giveTarget: "/v1/tenants/acme/items/7/parts/p-9", wantURI: "/parts/p-9/items/7/tenants/acme"},
		{name: "escapes kept", giveTarget: "/v1/items/a%20b%3Bc", wantURI: "/internal/items/a%20b%3Bc"},
		{name: "raw semicolon escaped", giveTarget: "/v1/items/a;b", wantURI: "/internal/items/a%3Bb"},
		{name: "non-ASCII", giveTarget: "/v1/items/caf%c3%a9", wantURI: "/internal/items/caf%C3%A9"},
		{name: "rest normalised", giveTarget: "/files/a/./b/../c.txt?v=2", wantURI: "/static/a/c.txt?v=2"},
		{name: "rest with encoded slash", giveTarget: "/files/a%2Fb", wantURI: "/static/a/b"},
		{name: "empty rest", giveTarget: "/files/", wantURI: "/static/"},
		{name: "dot segments resolved before matching", giveTarget: "/v1/items/x/../42", wantURI: "/internal/items/42"},
		{name: "literal beats parameter, no rewrite", giveTarget: "/v1/items/new", wantURI: "/v1/items/new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, e := rawEcho(t, gw, tt.giveTarget)
			if e == nil {
				t.Fatalf("GET %s: %s", tt.giveTarget, status)
			}
			if got := e["raw_uri"]; got != tt.wantURI {
				t.Errorf("GET %s: upstream saw %q, want %q", tt.giveTarget, got, tt.wantURI)
			}
		})
	}
}

// A parameter is one normalised segment: an encoded slash or dot-dot in it
// is resolved before matching and can never climb out of the template.
func TestRoutingParameterCannotEscape(t *testing.T) {
	gw := startRouting(t)
	for _, target := range []string{
		"/v1/items/..%2F..%2Fadmin", "/v1/items/%2e%2e", "/v1/items/%2E%2E%2Fadmin", "/v1/items/a%2Fb",
	} {
		t.Run(target, func(t *testing.T) {
			status, e := rawEcho(t, gw, target)
			if e != nil {
				t.Fatalf("GET %s reached the upstream as %v", target, e["raw_uri"])
			}
			if !strings.HasPrefix(status, "405") && !strings.HasPrefix(status, "404") {
				t.Fatalf("GET %s: %s, want 404 or 405", target, status)
			}
		})
	}
}

func TestRoutingParameter404And405(t *testing.T) {
	gw := startRouting(t)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		wantStatus int
		wantAllow  string
	}{
		{name: "method the parameter route refuses", giveMethod: "DELETE", givePath: "/v1/items/42", wantStatus: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "no fall through to the prefix", giveMethod: "POST", givePath: "/v1/items/42", wantStatus: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "literal route refusing", giveMethod: "PUT", givePath: "/v1/items/new", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "empty parameter is the prefix", giveMethod: "GET", givePath: "/v1/items/", wantStatus: 405, wantAllow: "POST"},
		{name: "parameter is one segment", giveMethod: "GET", givePath: "/v1/items/42/x", wantStatus: 405, wantAllow: "POST"},
		{name: "rest parameter needs its slash", giveMethod: "GET", givePath: "/files", wantStatus: 404},
		{name: "no route", giveMethod: "GET", givePath: "/v2/items/42", wantStatus: 404},
		{name: "prefix below the parameter", giveMethod: "POST", givePath: "/v1/items/42/x", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.giveMethod, gw.URL(tt.givePath), nil, "")
			if r.Status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.giveMethod, tt.givePath, r.Status, r.Body, tt.wantStatus)
			}
			if got := r.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			switch tt.wantStatus {
			case 404:
				if e := decodeError(t, r); e.Error != "not_found" {
					t.Errorf("error code %q", e.Error)
				}
			case 405:
				if e := decodeError(t, r); e.Error != "method_not_allowed" {
					t.Errorf("error code %q", e.Error)
				}
			case 200:
				if e := decodeEcho(t, r); e.RawURI != tt.givePath {
					t.Errorf("upstream saw %q, want %q unchanged", e.RawURI, tt.givePath)
				}
			}
		})
	}
}

// New routes, header conditions and templates take effect on reload; a
// reload with a tie keeps the old table and reports both routes with
// file:line, as -check does.
func TestRoutingReload(t *testing.T) {
	stable, canary := startEcho(t, "stable"), startEcho(t, "canary")
	full := fmt.Sprintf(routingConfig, stable, canary)
	before := strings.Replace(full, `headers: { X-Canary: "1" }`, `headers: { X-Canary: "yes" }`, 1)
	gw := gatewaytest.Start(t, before)
	hdr := map[string]string{"X-Canary": "1"}
	if e := decodeEcho(t, do(t, "GET", gw.URL("/v1/items/42"), hdr, "")); e.Server != "stable" {
		t.Fatalf("before reload X-Canary: 1 reached %q", e.Server)
	}

	gw.WriteConfig(strings.Replace(full, `rewrite: { path: "/internal/items/{id}" }`, `rewrite: { path: "/v2/items/{id}" }`, 1))
	if status, body := reload(t, gw); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	e := decodeEcho(t, do(t, "GET", gw.URL("/v1/items/42?q=1"), hdr, ""))
	if e.Server != "canary" {
		t.Fatalf("after reload X-Canary: 1 reached %q, want canary", e.Server)
	}
	if e = decodeEcho(t, do(t, "GET", gw.URL("/v1/items/42?q=1"), nil, "")); e.Server != "stable" || e.RawURI != "/v2/items/42?q=1" {
		t.Fatalf("after reload the stable route sent %q to %q, want /v2/items/42?q=1 to stable", e.RawURI, e.Server)
	}

	tie := strings.Replace(full, `match: { path: /v1/items/new, methods: [GET] }`, `match: { path: "/v1/items/{key}", methods: [PUT] }`, 1)
	tie = strings.Replace(tie, `rewrite: { path: "/static/{path...}" }`, `rewrite: { path: "/static/{paht...}" }`, 1)
	gw.WriteConfig(tie)
	status, body := reload(t, gw)
	if status != 400 {
		t.Fatalf("reload with a tie: %d %s", status, body)
	}
	var res struct{ Errors []string }
	_ = json.Unmarshal([]byte(body), &res)
	want := []string{
		gw.ConfigPath + `:21: routes[2].match.path: route "item-new" has the same host, path pattern and methods (PUT) as routes[0] ("item"); routes[0] is at ` + gw.ConfigPath + `:9`,
		gw.ConfigPath + `:30: routes[4].rewrite.path: unknown parameter {paht} (did you mean {path}?)`,
	}
	if strings.Join(res.Errors, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reload errors:\n%s\nwant:\n%s", strings.Join(res.Errors, "\n"), strings.Join(want, "\n"))
	}
	code, out := gatewaytest.RunCheck(t, gw.ConfigPath)
	if code != 1 || !strings.Contains(out, want[0]) || !strings.Contains(out, want[1]) {
		t.Fatalf("-check exit %d:\n%s", code, out)
	}
	if e := decodeEcho(t, do(t, "GET", gw.URL("/v1/items/42"), hdr, "")); e.Server != "canary" {
		t.Fatalf("after a failed reload X-Canary: 1 reached %q, want the old table's canary", e.Server)
	}
}
