package schemagen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
	"github.com/gatewayd/gatewayd/pkg/plugins/blacklist"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"github.com/gatewayd/gatewayd/pkg/plugins/compress"
	"github.com/gatewayd/gatewayd/pkg/plugins/cors"
	"github.com/gatewayd/gatewayd/pkg/plugins/headers"
	"github.com/gatewayd/gatewayd/pkg/plugins/ipfilter"
	"github.com/gatewayd/gatewayd/pkg/plugins/jwt"
	"github.com/gatewayd/gatewayd/pkg/plugins/ratelimit"
	"github.com/gatewayd/gatewayd/pkg/plugins/rbac"
	"github.com/gatewayd/gatewayd/pkg/plugins/requestid"
	"github.com/gatewayd/gatewayd/pkg/plugins/secheaders"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// TestGeneratedFilesUpToDate regenerates every file and compares it with
// the committed one.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("generated %d files, want 3", len(files))
	}
	for path, want := range files {
		t.Run(path, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(root, path))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Fatalf("%s is out of date: run go generate ./internal/schemagen\n%s", path, firstDiff(string(got), string(want)))
			}
		})
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + gl + "\n  generated: " + wl
		}
	}
	return ""
}

// settingsTypes lists each plugin kind's settings struct, independently of
// the generator's own table.
var settingsTypes = map[string]reflect.Type{
	"request-id":       reflect.TypeFor[requestid.Settings](),
	"jwt":              reflect.TypeFor[jwt.Settings](),
	"api-key":          reflect.TypeFor[apikey.Settings](),
	"blacklist":        reflect.TypeFor[blacklist.Settings](),
	"rbac":             reflect.TypeFor[rbac.Settings](),
	"ratelimit":        reflect.TypeFor[ratelimit.Settings](),
	"cors":             reflect.TypeFor[cors.Settings](),
	"security-headers": reflect.TypeFor[secheaders.Settings](),
	"ip-filter":        reflect.TypeFor[ipfilter.Settings](),
	"headers":          reflect.TypeFor[headers.Settings](),
	"compress":         reflect.TypeFor[compress.Settings](),
}

// structPaths returns every key path the loader and the plugin factories
// read, walking the structs as config.DecodeStrict does; fields holding raw
// YAML are expanded the way the gateway's builder and the plugins decode
// them.
func structPaths(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	nodePtr := reflect.TypeFor[*yaml.Node]()
	kinds := make([]string, 0, len(settingsTypes))
	for k := range settingsTypes {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var walk func(typ reflect.Type, prefix string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			key := YAMLKey(f)
			if key == "" {
				continue
			}
			p := key
			if prefix != "" {
				p = prefix + "." + key
			}
			out[p] = true
			ft := f.Type
			raw := ft == nodePtr || (ft.Kind() == reflect.Map || ft.Kind() == reflect.Slice) && ft.Elem() == nodePtr
			switch {
			case raw:
				switch typ.String() + "." + f.Name {
				case "config.Config.Plugins":
					for _, k := range kinds {
						out[p+".*.("+k+").type"] = true
						walk(settingsTypes[k], p+".*.("+k+")")
					}
				case "config.Route.Plugins":
					for _, k := range kinds {
						out[p+"[]."+k] = true
						walk(settingsTypes[k], p+"[]."+k)
					}
				case "ratelimit.Settings.Key", "jwt.Settings.Audience", "jwt.Provider.Audience":
					// A scalar or a list of scalars: no keys below.
				case "secheaders.Settings.HSTS":
					walk(reflect.TypeFor[secheaders.HSTS](), p)
				default:
					t.Errorf("%s.%s holds raw YAML: say in structPaths what it contains", typ, f.Name)
				}
			case ft.Kind() == reflect.Struct:
				walk(ft, p)
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), p)
			case ft.Kind() == reflect.Slice && elem(ft).Kind() == reflect.Struct:
				walk(elem(ft), p+"[]")
			case ft.Kind() == reflect.Map && elem(ft).Kind() == reflect.Struct:
				walk(elem(ft), p+".*")
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	return out
}

func elem(t reflect.Type) reflect.Type {
	e := t.Elem()
	if e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	return e
}

// TestSchemaMatchesStructs fails when a yaml-tagged field has no property in
// the committed schema, or a property has no field.
func TestSchemaMatchesStructs(t *testing.T) {
	var kinds []string
	for k := range settingsTypes {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if got, want := strings.Join(kinds, ","), strings.Join(builtin.Registry().Kinds(), ","); got != want {
		t.Fatalf("settingsTypes covers %s, the registry has %s", got, want)
	}
	_, doc := loadSchema(t)
	fields := structPaths(t)
	props := map[string]bool{}
	for p := range schemaProps(t, doc) {
		props[p] = true
	}
	for _, p := range sortedSet(fields) {
		if !props[p] {
			t.Errorf("field %s is missing from %s", p, SchemaPath)
		}
	}
	for _, p := range sortedSet(props) {
		if !fields[p] {
			t.Errorf("%s describes %s, which no struct field has", SchemaPath, p)
		}
	}
	if len(fields) < 150 {
		t.Fatalf("only %d field paths found: the walk is broken", len(fields))
	}
}

// TestSchemaDocumented checks that every property of the schema carries a
// description, so editors explain every key.
func TestSchemaDocumented(t *testing.T) {
	_, doc := loadSchema(t)
	defs := doc["$defs"].(map[string]any)
	check := func(where string, obj map[string]any) {
		props, _ := obj["properties"].(map[string]any)
		for k, v := range props {
			pm := v.(map[string]any)
			if _, shared := pm["$ref"].(string); shared && len(pm) == 1 {
				continue // described where the $ref points
			}
			if d, _ := pm["description"].(string); d == "" {
				t.Errorf("%s.%s has no description", where, k)
			}
		}
		if obj["additionalProperties"] != false && props != nil {
			t.Errorf("%s does not set additionalProperties: false", where)
		}
	}
	check("(root)", doc)
	for name, d := range defs {
		check(name, d.(map[string]any))
	}
}

func TestEnvPattern(t *testing.T) {
	re := regexp.MustCompile(EnvPattern)
	tests := []struct {
		give string
		want bool
	}{
		{give: "${PORT}", want: true},
		{give: "${GATEWAY_LISTEN:-:8080}", want: true},
		{give: "${A}:9000", want: true},
		{give: "prefix-${SECRET_1}-suffix", want: true},
		{give: "${lower_case}", want: true},
		{give: "$PORT", want: false},
		{give: "${1PORT}", want: false},
		{give: "${}", want: false},
		{give: "10s", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := re.MatchString(tt.give); got != tt.want {
				t.Fatalf("pattern matches %q: %v, want %v", tt.give, got, tt.want)
			}
			// The loader expands exactly the strings the pattern finds.
			t.Setenv("PORT", "1")
			t.Setenv("GATEWAY_LISTEN", "")
			t.Setenv("A", "1")
			t.Setenv("SECRET_1", "1")
			t.Setenv("lower_case", "1")
			n, err := config.ParseNode("env.yaml", []byte("v: "+yamlQuote(tt.give)+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if err := config.ExpandEnv("env.yaml", n); err != nil {
				t.Fatal(err)
			}
			if expanded := n.Content[1].Value != tt.give; expanded != tt.want {
				t.Fatalf("loader expanded %q: %v, want %v", tt.give, expanded, tt.want)
			}
		})
	}
}

func yamlQuote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(DurationPattern)
	for _, give := range []string{
		"10s", "1h30m", "7d", "1d12h", "0", "250ms", "1.5h", ".5s", "100us", "100µs", "730d", " 5m ", "+5m", "1d",
		"10", "ten", "-5s", "", "5 s", "1x", "d", "s", "5m-", "1e3s",
	} {
		t.Run(give, func(t *testing.T) {
			_, err := config.ParseDuration(give)
			if got, want := re.MatchString(give), err == nil; got != want {
				t.Fatalf("pattern matches %q: %v; ParseDuration accepts it: %v (%v)", give, got, want, err)
			}
		})
	}
}

func TestSizePattern(t *testing.T) {
	re := regexp.MustCompile(SizePattern)
	for _, give := range []string{
		"512", "8KiB", "10MiB", "1GiB", "64KB", "2 MiB", "10M", "1B", "+4K",
		"1.5MiB", "lots", "-1", "10 megabytes", "", "KiB", "8kib",
	} {
		t.Run(give, func(t *testing.T) {
			_, err := config.ParseSize(give)
			if got, want := re.MatchString(give), err == nil; got != want {
				t.Fatalf("pattern matches %q: %v; ParseSize accepts it: %v (%v)", give, got, want, err)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		give config.Duration
		want string
	}{
		{give: 0, want: "0"},
		{give: config.Duration(10e9), want: "10s"},
		{give: config.Duration(90e9), want: "90s"},
		{give: config.Duration(15 * 60e9), want: "15m"},
		{give: config.Duration(168 * 3600e9), want: "168h"},
		{give: config.Duration(730 * 24 * 3600e9), want: "730d"},
		{give: config.Duration(50e6), want: "50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := FormatDuration(tt.give)
			if got != tt.want {
				t.Fatalf("FormatDuration(%d) = %q, want %q", int64(tt.give), got, tt.want)
			}
			back, err := config.ParseDuration(got)
			if err != nil || config.Duration(back) != tt.give {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %d", got, back, err, int64(tt.give))
			}
		})
	}
}

// TestUndocumentedFieldFails proves the generator refuses a key without
// documentation: the check that keeps the reference complete.
func TestUndocumentedFieldFails(t *testing.T) {
	tests := []struct {
		name    string
		give    func() (undo func())
		wantErr string
	}{
		{
			name: "field without documentation",
			give: func() func() {
				saved := docs["server.read_timeout"]
				delete(docs, "server.read_timeout")
				return func() { docs["server.read_timeout"] = saved }
			},
			wantErr: "server.read_timeout (config.Server.ReadTimeout) has no entry in docs",
		},
		{
			name: "documentation without field",
			give: func() func() {
				docs["server.no_such_key"] = fieldDoc{Desc: "x"}
				return func() { delete(docs, "server.no_such_key") }
			},
			wantErr: "server.no_such_key is documented but no struct has that key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			undo := tt.give()
			defer undo()
			_, err := Schema()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestExamplesAndDefaultsValid checks every example and default of the
// reference: written as the reference shows it, YAML reads it back as the
// same value, and the key's own schema accepts it.
func TestExamplesAndDefaultsValid(t *testing.T) {
	loadSchema(t)
	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range m.sections {
		for _, f := range s.fields {
			ptr := "#/$defs/" + s.def + "/properties/" + f.key
			if s.def == "gateway" {
				ptr = "#/properties/" + f.key
			}
			sch, err := schemaCompiler.Compile(schemaURL + ptr)
			if err != nil {
				t.Fatalf("%s: %v", ptr, err)
			}
			for what, v := range map[string]any{"example": f.doc.Example, "default": f.def} {
				if v == nil {
					continue
				}
				n++
				text := flowYAML(v)
				var back any
				if err := yaml.Unmarshal([]byte(text), &back); err != nil {
					t.Errorf("%s.%s: %s %s is not YAML: %v", s.def, f.key, what, text, err)
					continue
				}
				want, got := toJSON(t, v), toJSON(t, back)
				if string(want) != string(got) {
					t.Errorf("%s.%s: %s %s reads back as %s, want %s", s.def, f.key, what, text, got, want)
					continue
				}
				inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(got)))
				if err != nil {
					t.Fatal(err)
				}
				if err := sch.Validate(inst); err != nil {
					t.Errorf("%s.%s: the schema rejects the %s %s: %v", s.def, f.key, what, text, err)
				}
			}
		}
	}
	if n < 150 {
		t.Fatalf("checked only %d values", n)
	}
}

func toJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPluginPatternsAgree builds plugins with values of the keys the schema
// constrains by a pattern, and checks the pattern accepts exactly what the
// plugin's factory accepts.
func TestPluginPatternsAgree(t *testing.T) {
	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	tests := []struct {
		kind, key string
		give      []string
	}{
		{kind: "request-id", key: "header", give: []string{"X-Request-ID", "X-Trace_Id", "bad header", "X:Id", "Ünïcode"}},
		{kind: "security-headers", key: "frame_options", give: []string{"DENY", "deny", "SameOrigin", "off", "OFF", "MAYBE", "ALLOW-FROM https://a.example"}},
		{kind: "security-headers", key: "referrer_policy", give: []string{"no-referrer", "same-origin, strict-origin", "off", "Off", "nope", "origin,", " origin "}},
	}
	for _, tt := range tests {
		var pattern string
		for _, f := range m.byDef["plugin-"+tt.kind].fields {
			if f.key == tt.key {
				pattern = f.doc.Pattern
			}
		}
		re := regexp.MustCompile(pattern)
		factory, _ := reg.Lookup(tt.kind)
		for _, give := range tt.give {
			t.Run(tt.kind+"."+tt.key+"="+give, func(t *testing.T) {
				node, err := config.ParseNode("p.yaml", []byte(tt.key+": "+yamlQuote(give)+"\n"))
				if err != nil {
					t.Fatal(err)
				}
				p, err := factory.Build(config.Section{File: "p.yaml", Path: tt.kind, Node: node}, nil)
				if p != nil {
					_ = p.Close()
				}
				if got, want := re.MatchString(give), err == nil; got != want {
					t.Fatalf("pattern matches %q: %v; the plugin accepts it: %v (%v)", give, got, want, err)
				}
			})
		}
	}
}
