package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	jwtlib "github.com/golang-jwt/jwt/v5"
)

const hardeningSecret = "1gjI-_A0uP6dGOXf0WAWovv2zFaU9hukZILG4nWcwioLJBmf"

// hardeningConfig has a public catch-all in front of protected routes, a
// jwt instance forwarding a claim outside X-User-*, a rules-only rbac entry
// and a rate limit keyed on a header nobody authenticates.
const hardeningConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info }
upstreams:
  echo: { targets: ["http://%s"] }
plugins:
  auth-jwt:
    type: jwt
    secret: ` + hardeningSecret + `
    forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email, tenant: X-Tenant }
routes:
  - name: public
    match: { path_prefix: / }
    upstream: echo
  - name: users
    match: { path_prefix: /v1/users/, methods: [GET, POST] }
    upstream: echo
    plugins: [request-id, auth-jwt]
  - name: login
    match: { path: /v1/auth/login, methods: [POST] }
    upstream: echo
  - name: widgets
    match: { path_prefix: /v1/widgets/, methods: [GET] }
    upstream: echo
    plugins: [{ cors: { allowed_origins: ["https://app.example.com"] } }, auth-jwt]
  - name: docs
    match: { path_prefix: /v1/docs/ }
    upstream: echo
    plugins:
      - auth-jwt
      - rbac:
          rules:
            - methods: [GET, POST]
              roles: [user]
  - name: keyed
    match: { path_prefix: /v1/keyed/ }
    upstream: echo
    plugins:
      - ratelimit: { key: "header:X-API-Key", limit: 100, period: 1m }
`

func startHardening(t *testing.T) *gatewaytest.Process {
	t.Helper()
	return gatewaytest.Start(t, fmt.Sprintf(hardeningConfig, startEcho(t, "echo")))
}

// hardeningToken mints an access token the auth-jwt instance accepts.
func hardeningToken(t *testing.T, role string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{
		"sub": "user-7", "role": role, "email": "u7@example.com", "tenant": "acme",
		"typ": "access", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).SignedString([]byte(hardeningSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// foldedHeaders returns the upstream's headers keyed by folded name (lower
// case, '_' as '-'), the way CGI-style applications see them.
func foldedHeaders(e echo.Request) map[string][]string {
	out := map[string][]string{}
	for k, v := range e.Headers {
		f := strings.ReplaceAll(strings.ToLower(k), "_", "-")
		out[f] = append(out[f], v...)
	}
	return out
}

func TestIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	gw := startHardening(t)
	forged := []string{
		"X_User_ID", "x_user_role", "X_Tenant", "x-user_email", "X-User-ID", "X-TENANT",
		"x_tenant", "X-User_Id", "X_USER_ANYTHING", "x-user-admin",
	}
	var raw strings.Builder
	for _, h := range forged {
		raw.WriteString(h + ": forged\r\n")
	}
	raw.WriteString("X_Custom_Header: kept\r\n")
	for _, path := range []string{"/anything", "/v1/users/1"} {
		t.Run(path, func(t *testing.T) {
			req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + raw.String()
			if path == "/v1/users/1" {
				req += "Authorization: Bearer " + hardeningToken(t, "user") + "\r\n"
			}
			status, body, _ := rawRequest(t, gw.Addr, req+"\r\n")
			if !strings.HasPrefix(status, "200") {
				t.Fatalf("%s: %s", status, body)
			}
			// rawRequest returns the response headers followed by the body.
			i := strings.Index(body, "{")
			if i < 0 {
				t.Fatalf("no JSON body:\n%s", body)
			}
			js := body[i:]
			e := decodeEcho(t, response{Status: 200, Body: []byte(js)})
			if strings.Contains(js, "forged") {
				t.Fatalf("a forged identity header reached the upstream:\n%s", js)
			}
			h := foldedHeaders(e)
			if got := strings.Join(h["x-custom-header"], ","); got != "kept" {
				t.Errorf("an ordinary header with '_' was dropped: %q", got)
			}
			if path != "/v1/users/1" {
				return
			}
			for name, want := range map[string]string{"x-user-id": "user-7", "x-user-role": "user", "x-user-email": "u7@example.com", "x-tenant": "acme"} {
				if got := h[name]; len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want exactly the claim %q", name, got, want)
				}
			}
		})
	}
}

func TestNoMethodFallThroughToACatchAll(t *testing.T) {
	gw := startHardening(t)
	tests := []struct {
		giveMethod string
		givePath   string
		wantStatus int
		wantAllow  string
	}{
		{giveMethod: "PATCH", givePath: "/v1/users/123", wantStatus: 405, wantAllow: "GET, HEAD, POST"},
		{giveMethod: "OPTIONS", givePath: "/v1/users/123", wantStatus: 405, wantAllow: "GET, HEAD, POST"},
		{giveMethod: "FOO", givePath: "/v1/users/123", wantStatus: 405, wantAllow: "GET, HEAD, POST"},
		{giveMethod: "get", givePath: "/v1/users/123", wantStatus: 405, wantAllow: "GET, HEAD, POST"},
		{giveMethod: "DELETE", givePath: "/v1/users", wantStatus: 405, wantAllow: "GET, HEAD, POST"},
		{giveMethod: "GET", givePath: "/v1/auth/login", wantStatus: 405, wantAllow: "POST"},
		{giveMethod: "GET", givePath: "/v1/users/123", wantStatus: 401},
		{giveMethod: "PATCH", givePath: "/v1/usersx", wantStatus: 200},
		{giveMethod: "FOO", givePath: "/elsewhere", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod+" "+tt.givePath, func(t *testing.T) {
			status, body, _ := rawRequest(t, gw.Addr, tt.giveMethod+" "+tt.givePath+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(status, fmt.Sprint(tt.wantStatus)) {
				t.Fatalf("status %s, want %d:\n%s", status, tt.wantStatus, body)
			}
			if tt.wantStatus != 405 {
				return
			}
			if !strings.Contains(body, "Allow: "+tt.wantAllow+"\r\n") {
				t.Errorf("Allow is not %q:\n%s", tt.wantAllow, body)
			}
			if !strings.Contains(body, `"error":"method_not_allowed"`) || !strings.Contains(body, `"request_id":"`) ||
				!strings.Contains(body, "Content-Type: application/json") {
				t.Errorf("not the JSON error body:\n%s", body)
			}
			if strings.Contains(body, `"path"`) {
				t.Errorf("the request reached the upstream:\n%s", body)
			}
		})
	}
	// A CORS preflight still reaches the cors plugin of a GET-only route.
	r := do(t, "OPTIONS", gw.URL("/v1/widgets/1"), map[string]string{
		"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
	}, "")
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d %v %s", r.Status, r.Header, r.Body)
	}
}

func TestRBACRulesOnlyDenyByOmission(t *testing.T) {
	gw := startHardening(t)
	user := "Bearer " + hardeningToken(t, "user")
	tests := []struct {
		giveMethod string
		wantStatus int
	}{
		{giveMethod: "GET", wantStatus: 200},
		{giveMethod: "HEAD", wantStatus: 200},
		{giveMethod: "POST", wantStatus: 200},
		{giveMethod: "OPTIONS", wantStatus: 403},
		{giveMethod: "PUT", wantStatus: 403},
		{giveMethod: "FOO", wantStatus: 403},
		{giveMethod: "get", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod, func(t *testing.T) {
			status, body, _ := rawRequest(t, gw.Addr, tt.giveMethod+" /v1/docs/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+
				"Content-Length: 0\r\nAuthorization: "+user+"\r\n\r\n")
			if !strings.HasPrefix(status, fmt.Sprint(tt.wantStatus)) {
				t.Fatalf("status %s, want %d:\n%s", status, tt.wantStatus, body)
			}
		})
	}
	if !gw.WaitLog(`configuration warning: `, 5*time.Second) || !strings.Contains(gw.Logs(), "routes[4].plugins[1].rbac.rules: warning: no top-level roles or scopes") {
		t.Errorf("the rbac warning is not in the start log:\n%s", gw.Logs())
	}
}

func TestCheckWarnsAndStillAccepts(t *testing.T) {
	gw := startHardening(t)
	code, out := gatewaytest.RunCheck(t, gw.ConfigPath)
	if code != 0 || !strings.HasSuffix(out, "configuration OK\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		gw.ConfigPath + ":35: routes[4].plugins[1].rbac.rules: warning: no top-level roles or scopes, and the rules do not cover CONNECT, DELETE, OPTIONS, PATCH, PUT, TRACE and methods outside the standard ones",
		gw.ConfigPath + ":41: routes[5].plugins[0].ratelimit.key: warning: a limit keyed on X-API-Key is advisory",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-check output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(gw.Logs(), "routes[5].plugins[0].ratelimit.key: warning: a limit keyed on X-API-Key is advisory") {
		t.Errorf("the ratelimit warning is not in the start log:\n%s", gw.Logs())
	}
}

func TestDropUnderscoreHeadersOptIn(t *testing.T) {
	cfg := strings.Replace(fmt.Sprintf(hardeningConfig, startEcho(t, "echo")),
		"log: { level: info }", "log: { level: info }\nserver: { drop_underscore_headers: true }", 1)
	gw := gatewaytest.Start(t, cfg)
	status, body, _ := rawRequest(t, gw.Addr, "GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+
		"X_Api_Version: 1\r\nAccept_Language: de\r\nX-Api-Version: 2\r\n\r\n")
	if !strings.HasPrefix(status, "200") {
		t.Fatalf("%s: %s", status, body)
	}
	i := strings.Index(body, "{")
	if i < 0 {
		t.Fatalf("no JSON body:\n%s", body)
	}
	e := decodeEcho(t, response{Status: 200, Body: []byte(body[i:])})
	for k := range e.Headers {
		if strings.Contains(k, "_") {
			t.Errorf("%s reached the upstream", k)
		}
	}
	if got := header(e, "X-Api-Version"); got != "2" {
		t.Errorf("X-Api-Version = %q, want 2", got)
	}
}
