package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const testSecret = "7qyN9gd3kDmE9aIU1W3wnPdgfKtyGpkOQ3yBD2kSDG8brjwr"

// authConfig is a gateway with the built-in auth service, the in-process
// store (or Redis when redisSection is set) and protected routes in front
// of the echo upstream.
const authConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info }
%s
upstreams:
  echo: { targets: ["http://%s"] }
auth:
  secret: ${JWT_SECRET}
  bcrypt_cost: 4
  refresh_reuse_grace: 200ms
  users_file: "{{DIR}}/users.db"
plugins:
  auth-jwt:
    type: jwt
    secret: ${JWT_SECRET}
    issuer: gatewayd-auth
    audience: api
    forward_claims: { sub: X-User-ID, role: X-User-Role, email: X-User-Email }
routes:
  - name: auth
    match: { path_prefix: /v1/auth/ }
    upstream: builtin:auth
    plugins: [request-id]
  - name: users
    match: { path_prefix: /v1/users/ }
    upstream: echo
    plugins: [request-id, auth-jwt, blacklist, { rbac: { roles: [user, admin] } }]
  - name: admin
    match: { path_prefix: /v1/admin/ }
    upstream: echo
    plugins: [request-id, auth-jwt, blacklist, { rbac: { roles: [admin] } }]
  - name: public
    match: { path_prefix: /public/ }
    upstream: echo
`

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Type    string `json:"token_type"`
	Expires int    `json:"expires_in"`
}

func startAuthGateway(t *testing.T, redisSection string) *gatewaytest.Process {
	t.Helper()
	echoAddr := startEcho(t, "echo")
	return gatewaytest.Start(t, fmt.Sprintf(authConfig, redisSection, echoAddr),
		gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var jsonHdr = map[string]string{"Content-Type": "application/json"}

func signup(t *testing.T, gw *gatewaytest.Process, email, pw string) {
	t.Helper()
	r := do(t, "POST", gw.URL("/v1/auth/signup"), jsonHdr, jsonBody(map[string]string{"email": email, "password": pw}))
	if r.Status != 201 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
}

func login(t *testing.T, gw *gatewaytest.Process, email, pw string) tokens {
	t.Helper()
	r := do(t, "POST", gw.URL("/v1/auth/login"), jsonHdr, jsonBody(map[string]string{"email": email, "password": pw}))
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var tk tokens
	if err := json.Unmarshal(r.Body, &tk); err != nil || tk.Access == "" || tk.Refresh == "" || tk.Type != "Bearer" {
		t.Fatalf("login body: %v %s", err, r.Body)
	}
	return tk
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func expectUnauthorized(t *testing.T, r response, wantMsg string) {
	t.Helper()
	if r.Status != 401 {
		t.Fatalf("status %d, want 401: %s", r.Status, r.Body)
	}
	e := decodeError(t, r)
	if e.Error != "unauthorized" || (wantMsg != "" && !strings.Contains(e.Message, wantMsg)) {
		t.Fatalf("error %+v, want message containing %q", e, wantMsg)
	}
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
}

func TestAuthFlowThroughGateway(t *testing.T) {
	gw := startAuthGateway(t, "")
	const email, pw = "ada@example.com", "correct-Horse-42"
	signup(t, gw, email, pw)
	tk := login(t, gw, email, pw)

	// Through jwt + blacklist + rbac to the upstream, identity forwarded,
	// a spoofed identity header replaced.
	hdr := bearer(tk.Access)
	hdr["X-User-ID"] = "someone-else"
	hdr["X-User-Admin"] = "true"
	e := decodeEcho(t, do(t, "GET", gw.URL("/v1/users/me"), hdr, ""))
	if header(e, "X-User-Email") != email || header(e, "X-User-Role") != "user" || header(e, "X-User-ID") == "someone-else" || header(e, "X-User-ID") == "" {
		t.Fatalf("forwarded identity wrong: %v", e.Headers)
	}
	if header(e, "X-User-Admin") != "" {
		t.Fatalf("client X-User-* header reached the upstream: %v", e.Headers)
	}
	sub := header(e, "X-User-ID")

	// No token: 401; a user on an admin route: 403.
	expectUnauthorized(t, do(t, "GET", gw.URL("/v1/users/me"), nil, ""), "")
	r := do(t, "GET", gw.URL("/v1/admin/stats"), bearer(tk.Access), "")
	if r.Status != 403 || decodeError(t, r).Error != "forbidden" {
		t.Fatalf("admin route: %d %s", r.Status, r.Body)
	}
	// A spoofed X-User-ID never reaches an upstream, even on a route without jwt.
	e = decodeEcho(t, do(t, "GET", gw.URL("/public/x"), map[string]string{"X-User-ID": sub, "X-User-Role": "admin"}, ""))
	if header(e, "X-User-ID") != "" || header(e, "X-User-Role") != "" {
		t.Fatalf("spoofed identity reached the upstream: %v", e.Headers)
	}

	// me through the gateway.
	r = do(t, "GET", gw.URL("/v1/auth/me"), bearer(tk.Access), "")
	if r.Status != 200 || !strings.Contains(string(r.Body), email) {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}

	// Refresh: a new pair.
	r = do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk.Refresh}))
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	var tk2 tokens
	_ = json.Unmarshal(r.Body, &tk2)
	if tk2.Access == "" || tk2.Refresh == tk.Refresh {
		t.Fatalf("refresh did not rotate: %s", r.Body)
	}

	// Logout: the access token is refused on the very next request.
	r = do(t, "POST", gw.URL("/v1/auth/logout"), merge(bearer(tk2.Access), jsonHdr), jsonBody(map[string]string{"refresh_token": tk2.Refresh}))
	if r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	expectUnauthorized(t, do(t, "GET", gw.URL("/v1/users/me"), bearer(tk2.Access), ""), "revoked")
	r = do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk2.Refresh}))
	if r.Status != 401 {
		t.Fatalf("refresh after logout: %d %s", r.Status, r.Body)
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	gw := startAuthGateway(t, "")
	const email, pw = "bob@example.com", "Tr0ub4dor&3xx"
	signup(t, gw, email, pw)
	tk := login(t, gw, email, pw)
	r := do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk.Refresh}))
	if r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	var tk2 tokens
	_ = json.Unmarshal(r.Body, &tk2)
	time.Sleep(300 * time.Millisecond) // past refresh_reuse_grace
	// R1 again: reuse. 401, and R2 and the live access token are dead.
	r = do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk.Refresh}))
	if r.Status != 401 {
		t.Fatalf("reuse: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk2.Refresh}))
	if r.Status != 401 {
		t.Fatalf("successor after reuse: %d %s", r.Status, r.Body)
	}
	expectUnauthorized(t, do(t, "GET", gw.URL("/v1/users/me"), bearer(tk2.Access), ""), "revoked")
	// A new login afterwards works.
	tk3 := login(t, gw, email, pw)
	if r := do(t, "GET", gw.URL("/v1/users/me"), bearer(tk3.Access), ""); r.Status != 200 {
		t.Fatalf("new login after reuse: %d %s", r.Status, r.Body)
	}
}

// TestLogoutBearerOnlyEndsSession follows the README's logout, with the
// access token alone: the session's refresh token dies with it.
func TestLogoutBearerOnlyEndsSession(t *testing.T) {
	gw := startAuthGateway(t, "")
	const email, pw = "carol@example.com", "correct-Horse-42"
	signup(t, gw, email, pw)
	tk := login(t, gw, email, pw)
	other := login(t, gw, email, pw)
	if r := do(t, "POST", gw.URL("/v1/auth/logout"), bearer(tk.Access), ""); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	expectUnauthorized(t, do(t, "GET", gw.URL("/v1/users/me"), bearer(tk.Access), ""), "revoked")
	r := do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": tk.Refresh}))
	if r.Status != 401 || decodeError(t, r).Error != "unauthorized" {
		t.Fatalf("refresh after logout: %d %s, want 401", r.Status, r.Body)
	}
	// The account's other session is not touched.
	r = do(t, "POST", gw.URL("/v1/auth/refresh"), jsonHdr, jsonBody(map[string]string{"refresh_token": other.Refresh}))
	if r.Status != 200 {
		t.Fatalf("refresh of another session: %d %s", r.Status, r.Body)
	}
}

func TestLogoutAllAndAdmin(t *testing.T) {
	echoAddr := startEcho(t, "echo")
	cfg := fmt.Sprintf(authConfig, "", echoAddr)
	// Create an admin with authd before the gateway opens the user file.
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth.yaml")
	users := filepath.Join(dir, "users.db")
	if err := os.WriteFile(authFile, []byte("auth:\n  secret: "+testSecret+"\n  bcrypt_cost: 4\n  users_file: "+users+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatewaytest.Binary(t, "authd"), "user", "add", "--email", "root@example.com", "--role", "admin", "-config", authFile)
	cmd.Stdin = strings.NewReader("Admin-Passw0rd!\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("authd user add: %v\n%s", err, out)
	}
	cfg = strings.Replace(cfg, `users_file: "{{DIR}}/users.db"`, `users_file: "`+users+`"`, 1)
	gw := gatewaytest.Start(t, cfg, gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})

	admin := login(t, gw, "root@example.com", "Admin-Passw0rd!")
	if r := do(t, "GET", gw.URL("/v1/admin/stats"), bearer(admin.Access), ""); r.Status != 200 {
		t.Fatalf("admin on admin route: %d %s", r.Status, r.Body)
	}
	a1 := login(t, gw, "root@example.com", "Admin-Passw0rd!")
	r := do(t, "POST", gw.URL("/v1/auth/logout-all"), bearer(admin.Access), "")
	if r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	for _, tok := range []string{admin.Access, a1.Access} {
		expectUnauthorized(t, do(t, "GET", gw.URL("/v1/users/x"), bearer(tok), ""), "revoked")
	}
	// A token issued after the mark is never revoked by it.
	a2 := login(t, gw, "root@example.com", "Admin-Passw0rd!")
	if r := do(t, "GET", gw.URL("/v1/users/x"), bearer(a2.Access), ""); r.Status != 200 {
		t.Fatalf("token issued after logout-all: %d %s", r.Status, r.Body)
	}
}
