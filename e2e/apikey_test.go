package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
)

const apiKeyConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: debug, access_log: true }
upstreams:
  echo: { targets: ["http://%[1]s"] }
plugins:
  machine-keys:
    type: api-key
    keys_file: %[2]s
  machine-keys-query:
    type: api-key
    query: api_key
    keys_file: %[2]s
routes:
  - name: deploy
    match: { path_prefix: /v1/deploy/ }
    upstream: echo
    plugins:
      - machine-keys
      - rbac: { roles: [deploy] }
      - ratelimit: { key: user, limit: 3, period: 1h }
  - name: hook
    match: { path_prefix: /v1/hook/ }
    upstream: echo
    plugins: [machine-keys-query]
`

// TestAPIKeys runs the real binary with the api-key plugin: valid, unknown
// and expired keys, the identity used by rbac and by a per-user rate limit,
// the keys file re-read on reload while gateway.yaml is unchanged, and no
// key in any log line.
func TestAPIKeys(t *testing.T) {
	var keys [4]string
	for i := range keys {
		k, _, err := apikey.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	deployer, reader, expired, later := keys[0], keys[1], keys[2], keys[3]
	entries := func(extra string) string {
		return `{"keys": [
  {"id": "ci-bot", "sha256": "` + apikey.Sum(deployer) + `", "sub": "ci-bot", "roles": ["deploy"]},
  {"id": "reader", "sha256": "` + apikey.Sum(reader) + `", "sub": "svc-reader", "roles": ["reader"]},
  {"id": "old", "sha256": "` + apikey.Sum(expired) + `", "sub": "old-bot", "roles": ["deploy"], "expires": "2020-01-01T00:00:00Z"}` + extra + `
]}`
	}
	keysFile := filepath.Join(t.TempDir(), "keys.json")
	writeKeysFile := func(content string) {
		t.Helper()
		if err := os.WriteFile(keysFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeysFile(entries(""))
	gw := gatewaytest.Start(t, fmt.Sprintf(apiKeyConfig, startEcho(t, "echo"), keysFile))

	deploy := func(key string) response {
		return do(t, "POST", gw.URL("/v1/deploy/run"), map[string]string{"X-API-Key": key, "X-User-ID": "spoofed"}, "")
	}
	r := deploy(deployer)
	if r.Status != 200 {
		t.Fatalf("valid key: %d %s", r.Status, r.Body)
	}
	e := decodeEcho(t, r)
	if got := header(e, "X-User-ID"); got != "ci-bot" {
		t.Errorf("X-User-ID %q, want ci-bot", got)
	}
	if got := header(e, "X-API-Key"); got != "" {
		t.Errorf("the upstream received the key: %q", got)
	}
	for _, tt := range []struct {
		name, key, wantMsg string
		wantStatus         int
	}{
		{"unknown key", "gwk_not-a-key", "invalid API key", 401},
		{"expired key", expired, "API key expired", 401},
		{"missing key", "", "missing API key", 401},
		{"role the route does not allow", reader, "insufficient permissions", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := deploy(tt.key)
			if r.Status != tt.wantStatus || decodeError(t, r).Message != tt.wantMsg {
				t.Fatalf("%d %s, want %d %q", r.Status, r.Body, tt.wantStatus, tt.wantMsg)
			}
		})
	}
	// ratelimit key: user counts per key subject: ci-bot has used 1 of 3.
	for i := 0; i < 2; i++ {
		if r := deploy(deployer); r.Status != 200 {
			t.Fatalf("request %d within the limit: %d", i+2, r.Status)
		}
	}
	if r := deploy(deployer); r.Status != 429 {
		t.Fatalf("4th request of ci-bot: %d, want 429", r.Status)
	}

	q := do(t, "GET", gw.URL("/v1/hook/ping?x=1&api_key="+deployer), nil, "")
	if q.Status != 200 {
		t.Fatalf("query key: %d %s", q.Status, q.Body)
	}
	if e := decodeEcho(t, q); strings.Contains(e.RawURI, "api_key") || e.Query != "x=1" {
		t.Errorf("the upstream received the query key: %q", e.RawURI)
	}

	// A new key, added to the keys file only: a reload picks it up.
	if r := deploy(later); r.Status != 401 {
		t.Fatalf("key not yet listed: %d", r.Status)
	}
	writeKeysFile(entries(`,
  {"id": "later", "sha256": "` + apikey.Sum(later) + `", "sub": "later-bot", "roles": ["deploy"]}`))
	if rr := do(t, "POST", gw.AdminURL("/-/reload"), nil, ""); rr.Status != 200 {
		t.Fatalf("reload: %d %s", rr.Status, rr.Body)
	}
	if r := deploy(later); r.Status != 200 {
		t.Fatalf("key added by reload: %d %s", r.Status, r.Body)
	}
	// A broken keys file is a reload error: the old keys keep working.
	writeKeysFile(`{"keys": [{"id": "x", "sha256": "zz"}]}`)
	if rr := do(t, "POST", gw.AdminURL("/-/reload"), nil, ""); rr.Status == 200 || !strings.Contains(string(rr.Body), "keys.json:1: keys[0].sha256") {
		t.Fatalf("reload with a broken keys file: %d %s", rr.Status, rr.Body)
	}
	if r := deploy(later); r.Status != 200 {
		t.Fatalf("after a failed reload: %d", r.Status)
	}

	logs := gw.Logs()
	if !strings.Contains(logs, `"user_id":"ci-bot"`) {
		t.Errorf("access log lacks user_id ci-bot:\n%s", logs)
	}
	for _, k := range keys {
		if strings.Contains(logs, k) {
			t.Errorf("a key appears in the logs:\n%s", logs)
		}
	}
}
