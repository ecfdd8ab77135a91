package schemagen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// root is the module root, relative to this package.
const root = "../.."

// schemaLine is the first line of every sample gateway configuration.
const schemaLine = "# yaml-language-server: $schema=./gateway.schema.json"

// schemaURL is the identifier the tests compile the schema under.
const schemaURL = "https://gatewayd.invalid/gateway.schema.json"

var (
	schemaOnce     sync.Once
	schemaCompiler *jsonschema.Compiler
	compiledSchema *jsonschema.Schema
	schemaDoc      map[string]any
	schemaErr      error
)

// loadSchema compiles the committed configs/gateway.schema.json (checking it
// against the draft 2020-12 meta-schema) and returns it with its decoded
// JSON.
func loadSchema(t testing.TB) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	schemaOnce.Do(func() {
		data, err := os.ReadFile(filepath.Join(root, SchemaPath))
		if err != nil {
			schemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource(schemaURL, doc); err != nil {
			schemaErr = err
			return
		}
		schemaCompiler = c
		compiledSchema, schemaErr = c.Compile(schemaURL)
		if m, ok := doc.(map[string]any); ok {
			schemaDoc = m
		}
	})
	if schemaErr != nil {
		t.Fatalf("%s: %v", SchemaPath, schemaErr)
	}
	return compiledSchema, schemaDoc
}

// errYAMLToJSON reports a YAML document that has no JSON equivalent.
var errYAMLToJSON = errors.New("no JSON equivalent")

// yamlToJSON converts a parsed YAML document to the JSON value an editor
// validates: mappings to objects, sequences to arrays, scalars by their
// resolved tag. ${VAR} placeholders stay as they are written.
func yamlToJSON(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("%w: %d documents", errYAMLToJSON, len(n.Content))
		}
		return yamlToJSON(n.Content[0])
	case yaml.AliasNode:
		return yamlToJSON(n.Alias)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%w: line %d: a key that is not a scalar", errYAMLToJSON, k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("%w: line %d: duplicate key %q", errYAMLToJSON, k.Line, k.Value)
			}
			v, err := yamlToJSON(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := yamlToJSON(c)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, err
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return json.Number(n.Value), nil
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return n.Value, nil
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("%w: node kind %d", errYAMLToJSON, n.Kind)
}

// schemaCheck validates YAML text against the schema. It returns nil when
// the document is valid, else the locations (JSON pointer segments) the
// schema complains about; convErr is set when the text is not a JSON-able
// YAML document at all.
func schemaCheck(t testing.TB, data []byte) (locations [][]string, convErr error) {
	t.Helper()
	sch, _ := loadSchema(t)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	v, err := yamlToJSON(&doc)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil, nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("validate: %v", err)
	}
	var leaves func(e *jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			locations = append(locations, e.InstanceLocation)
			return
		}
		for _, c := range e.Causes {
			leaves(c)
		}
	}
	leaves(ve)
	if len(locations) == 0 {
		locations = append(locations, nil)
	}
	return locations, nil
}

// pathSegments splits a config error path ("routes[0].plugins[1].x") into
// the segments of a JSON pointer.
func pathSegments(p string) []string {
	if p == "" {
		return nil
	}
	p = strings.NewReplacer("[", ".", "]", "").Replace(p)
	return strings.Split(p, ".")
}

// related reports whether a is b, or one of them lies under the other.
func related(a, b []string) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// schemaProps walks the schema document and returns every property path it
// describes, mapped to "<definition>.<key>" of the definition holding the
// property. Paths use "." between keys, ".*" for the values of a mapping of
// names, "[]" for list items and ".(kind)" for the branch of a oneOf chosen
// by a constant "type".
func schemaProps(t testing.TB, doc map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	var visit func(node any, prefix, def string, depth int)
	resolve := func(ref string) (any, string) {
		ptr, ok := strings.CutPrefix(ref, "#/")
		if !ok {
			t.Fatalf("unsupported $ref %q", ref)
		}
		var cur any = doc
		parts := strings.Split(ptr, "/")
		for _, p := range parts {
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("$ref %q does not resolve", ref)
			}
			cur, ok = m[p]
			if !ok {
				t.Fatalf("$ref %q does not resolve", ref)
			}
		}
		def := ""
		if len(parts) == 2 && parts[0] == "$defs" {
			def = parts[1]
		}
		return cur, def
	}
	join := func(prefix, key string) string {
		if prefix == "" {
			return key
		}
		return prefix + "." + key
	}
	visit = func(node any, prefix, def string, depth int) {
		if depth > 40 {
			t.Fatalf("schema nests too deeply at %q", prefix)
		}
		m, ok := node.(map[string]any)
		if !ok {
			return
		}
		if r, ok := m["$ref"].(string); ok {
			target, d := resolve(r)
			if d == "" {
				d = def
			}
			visit(target, prefix, d, depth+1)
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, v := range props {
				p := join(prefix, k)
				out[p] = def + "." + k
				if vm, ok := v.(map[string]any); ok {
					if r, ok := vm["$ref"].(string); ok {
						// A property shared with another definition:
						// "#/$defs/<def>/properties/<key>".
						if parts := strings.Split(r, "/"); len(parts) == 5 && parts[1] == "$defs" && parts[3] == "properties" {
							out[p] = parts[2] + "." + parts[4]
						}
					}
				}
				visit(v, p, def, depth+1)
			}
		}
		if ap, ok := m["additionalProperties"].(map[string]any); ok {
			visit(ap, prefix+".*", def, depth+1)
		}
		if it, ok := m["items"].(map[string]any); ok {
			visit(it, prefix+"[]", def, depth+1)
		}
		for _, kw := range []string{"anyOf", "oneOf", "allOf"} {
			branches, _ := m[kw].([]any)
			for _, b := range branches {
				bp := prefix
				if bm, ok := b.(map[string]any); ok {
					if props, ok := bm["properties"].(map[string]any); ok {
						if tp, ok := props["type"].(map[string]any); ok {
							if c, ok := tp["const"].(string); ok {
								bp = prefix + ".(" + c + ")"
							}
						}
					}
				}
				visit(b, bp, def, depth+1)
			}
		}
	}
	visit(doc, "", "gateway", 0)
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
