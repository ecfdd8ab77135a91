package schemagen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// semanticOnly lists the invalid fixtures whose every mistake is beyond
// what a JSON Schema can express. -check must reject them; the schema's
// verdict is not compared.
var semanticOnly = map[string]string{
	"duplicate_match.yaml":      "two routes with the same host, path_prefix and methods: a relation between list items",
	"references.yaml":           "names that must exist in other sections (upstream, plugin), unique route names, builtin:auth without auth:",
	"unset_env.yaml":            "an unset environment variable: the schema sees the ${VAR} placeholder, whose value only exists at load time",
	"plugin_order.yaml":         "plugins listed before the jwt plugin they need: an order between list items",
	"weak_secrets.yaml":         "secrets long enough but guessable (placeholders, repetition, low entropy): judged by estimating their entropy",
	"tls_files.yaml":            "certificate, key and CA files that cannot be read or hold no PEM: only reading them tells",
	"redirect_without_tls.yaml": "redirect_http without a tls: section: a relation between two top-level keys",
	"tls_client_auth.yaml":      "client_auth without client_ca_file: a relation between two keys",
	"websocket.yaml":            "websocket options checked against other route fields (methods, upstream, websocket: true) and a duration's minimum",
	"failed_plugin.yaml":        "a jwt secret too short for its algorithm: the minimum length depends on the algorithm the other keys pick",
}

// check runs what `gatewayd -check -config file` runs and returns the
// errors it reports.
func check(t *testing.T, file string) []*config.Error {
	t.Helper()
	cfg, err := config.Load(file)
	err = gateway.Check(cfg, err, builtin.Registry())
	var out []*config.Error
	for _, e := range config.Errors(err) {
		ce, ok := e.(*config.Error)
		if !ok {
			t.Fatalf("%s: error without a position: %v", file, e)
		}
		out = append(out, ce)
	}
	return out
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "testdata/config", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/config/%s (%v)", dir, err)
	}
	return files
}

// TestValidFixturesAgree: -check and the schema both accept every valid
// fixture.
func TestValidFixturesAgree(t *testing.T) {
	for _, file := range fixtures(t, "valid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if errs := check(t, file); len(errs) > 0 {
				t.Fatalf("-check rejects a valid fixture: %v", errs)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			locs, err := schemaCheck(t, data)
			if err != nil || locs != nil {
				t.Fatalf("the schema rejects a valid fixture at %v (%v)", locs, err)
			}
		})
	}
}

// TestInvalidFixturesAgree: for every invalid fixture whose mistakes a
// schema can express (unknown keys, types, values outside a set, syntax),
// the schema rejects it too, and only in mappings where -check also reports
// a mistake.
func TestInvalidFixturesAgree(t *testing.T) {
	seen := map[string]bool{}
	for _, file := range fixtures(t, "invalid") {
		name := filepath.Base(file)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			errs := check(t, file)
			if len(errs) == 0 {
				t.Fatal("-check accepts an invalid fixture")
			}
			if why, ok := semanticOnly[name]; ok {
				t.Logf("semantic only, schema not compared: %s", why)
				return
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			locs, convErr := schemaCheck(t, data)
			if convErr != nil {
				// Not a YAML document at all: -check must say so too.
				if !strings.Contains(errs[0].Msg, "invalid YAML") {
					t.Fatalf("the file does not convert to JSON (%v), but -check reports %v", convErr, errs)
				}
				return
			}
			if locs == nil {
				t.Fatalf("the schema accepts a file -check rejects with:\n%s\n(if no schema can express these mistakes, add the file to semanticOnly)", lines(errs))
			}
			for _, loc := range locs {
				// A plugin's factory stops at its section's decoding
				// errors, so -check may name one key of a mapping where
				// the schema names several: compare the mapping holding
				// the key.
				parent := loc[:max(len(loc)-1, 0)]
				ok := false
				for _, e := range errs {
					ok = ok || related(parent, pathSegments(e.Path))
				}
				if !ok {
					t.Errorf("the schema complains at /%s, where -check reports nothing:\n%s", strings.Join(loc, "/"), lines(errs))
				}
			}
		})
	}
	for name := range semanticOnly {
		if !seen[name] {
			t.Errorf("semanticOnly names %s, which is not a fixture", name)
		}
	}
}

func lines(errs []*config.Error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("  " + e.Error() + "\n")
	}
	return b.String()
}

// TestPlaceholdersInTypedFields: a ${VAR} may stand for a number, a boolean,
// a duration, a size or a value of a fixed set; the schema accepts the
// placeholder and -check the value it is replaced with.
func TestPlaceholdersInTypedFields(t *testing.T) {
	env := map[string]string{
		"GW_VERSION": "1", "GW_LISTEN": "127.0.0.1:18080", "GW_MAX_CONNS": "1000", "GW_ACCESS_LOG": "false",
		"GW_LEVEL": "warn", "GW_TARGET": "http://127.0.0.1:9002", "GW_RETRIES": "2", "GW_TIMEOUT": "20s",
		"GW_BODY": "1MiB", "GW_BALANCE": "least_conn", "GW_STRIP": "true", "GW_LIMIT": "100", "GW_KEY": "ip",
		"GW_HSTS": "true", "GW_METHOD": "GET",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	src := `version: ${GW_VERSION}
listen: ${GW_LISTEN}
server: { max_connections: "${GW_MAX_CONNS}", max_request_body_bytes: "${GW_BODY}" }
log: { level: "${GW_LEVEL}", access_log: "${GW_ACCESS_LOG}" }
upstreams:
  app:
    targets: ["${GW_TARGET}"]
    balance: ${GW_BALANCE}
    retries: ${GW_RETRIES}
    timeout: ${GW_TIMEOUT}
routes:
  - name: app
    match: { path_prefix: /app/, methods: ["${GW_METHOD}"] }
    upstream: app
    strip_prefix: ${GW_STRIP}
    plugins:
      - ratelimit: { key: "${GW_KEY}", limit: "${GW_LIMIT}", period: 1m }
      - security-headers: { hsts: "${GW_HSTS}" }
`
	file := filepath.Join(t.TempDir(), "placeholders.yaml")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if locs, err := schemaCheck(t, []byte(src)); err != nil || locs != nil {
		t.Fatalf("the schema rejects placeholders at %v (%v)", locs, err)
	}
	if errs := check(t, file); len(errs) > 0 {
		t.Fatalf("-check rejects the replaced values:\n%s", lines(errs))
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MaxConnections != 1000 || *cfg.Log.AccessLog || cfg.Upstreams["app"].Retries != 2 || !cfg.Routes[0].StripPrefix {
		t.Fatalf("placeholders not replaced by typed values: %+v", cfg.Server)
	}

	// A value the placeholder stands for is checked by -check only.
	t.Setenv("GW_RETRIES", "eleven")
	errs := check(t, file)
	if len(errs) != 1 || errs[0].Path != "upstreams.app.retries" {
		t.Fatalf("errors = %v, want one about upstreams.app.retries", errs)
	}
}

// TestConfigPatternsAgree checks the patterns of listen addresses, targets
// and route paths against what -check accepts.
func TestConfigPatternsAgree(t *testing.T) {
	tests := []struct {
		name string
		tmpl string // %s is replaced by the value
		give []string
	}{
		{
			name: "listen",
			tmpl: "listen: %s\n",
			give: []string{":8080", "127.0.0.1:8081", "[::1]:8082", "localhost:8083", "host_name.local:8084", "8085", "127.0.0.1", "-bad:8086", "a b:8087", "http://x:8088"},
		},
		{
			name: "target",
			tmpl: "upstreams: { app: { targets: [%s] } }\n",
			give: []string{"http://127.0.0.1:9002", "https://api.example.com", "HTTP://A.example:1", "http://a.example:1/", "127.0.0.1:9002", "http://a.example/api", "http://u@a.example", "http://a.example?x=1", "ftp://a.example", "http://"},
		},
		{
			name: "path_prefix",
			tmpl: "routes: [{ name: r, match: { path_prefix: %s }, upstream: app }]\n",
			give: []string{"/", "/v1/users/", "v1/users", "*"},
		},
	}
	base := map[string]string{
		"listen":      "upstreams: { app: { targets: [\"http://127.0.0.1:9002\"] } }\nroutes: [{ name: r, match: { path_prefix: / }, upstream: app }]\n",
		"target":      "routes: [{ name: r, match: { path_prefix: / }, upstream: app }]\n",
		"path_prefix": "upstreams: { app: { targets: [\"http://127.0.0.1:9002\"] } }\n",
	}
	dir := t.TempDir()
	for _, tt := range tests {
		for _, give := range tt.give {
			t.Run(tt.name+"="+give, func(t *testing.T) {
				src := strings.Replace(tt.tmpl, "%s", yamlQuote(give), 1) + base[tt.name]
				file := filepath.Join(dir, "p.yaml")
				if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				errs := check(t, file)
				locs, err := schemaCheck(t, []byte(src))
				if err != nil {
					t.Fatal(err)
				}
				if schemaOK, checkOK := locs == nil, len(errs) == 0; schemaOK != checkOK {
					t.Fatalf("schema accepts %q: %v (at %v); -check accepts it: %v\n%s", give, schemaOK, locs, checkOK, lines(errs))
				}
			})
		}
	}
}
