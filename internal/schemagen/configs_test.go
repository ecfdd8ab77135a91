package schemagen

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/testpki"

	"github.com/gatewayd/gatewayd/pkg/config"
	"gopkg.in/yaml.v3"
)

// sampleEnv is the environment the sample configurations read.
var sampleEnv = map[string]string{
	"JWT_SECRET":     "RJLu3xcO45CQrpDDyXihNYho_AfYiXncIUke1JO0InVFIH2I",
	"REDIS_PASSWORD": "sample-redis-password",
}

// TestSampleConfigs loads every configs/gateway*.yaml as `gatewayd -check`
// does, and validates it against the schema. configs/auth.yaml is an authd
// file, checked by cmd/authd's tests with `authd -check`.
func TestSampleConfigs(t *testing.T) {
	for k, v := range sampleEnv {
		t.Setenv(k, v)
	}
	// configs/gateway.tls.yaml names its certificate through the
	// environment: a throwaway self-signed one made here.
	certFile, keyFile := selfSignedCert(t)
	t.Setenv("TLS_CERT_FILE", certFile)
	t.Setenv("TLS_KEY_FILE", keyFile)
	files, err := filepath.Glob(filepath.Join(root, "configs/gateway*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		names[name] = true
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(data), "\n"); first != schemaLine {
				t.Errorf("first line is %q, want %q", first, schemaLine)
			}
			if errs := check(t, file); len(errs) > 0 {
				t.Fatalf("-check rejects it:\n%s", lines(errs))
			}
			if locs, err := schemaCheck(t, data); err != nil || locs != nil {
				t.Fatalf("the schema rejects it at %v (%v)", locs, err)
			}
		})
	}
	for _, want := range []string{"gateway.yaml", "gateway.redis.yaml", "gateway.production.yaml"} {
		if !names[want] {
			t.Errorf("configs/%s is missing", want)
		}
	}
}

// selfSignedCert writes a certificate for localhost, valid for a day, and
// its key into a temporary directory.
func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	leaf := testpki.NewCA(t, "sample-config CA").Server(t, []string{"localhost"})
	dir := t.TempDir()
	return testpki.WriteFile(t, dir, "localhost.pem", leaf.CertPEM), testpki.WriteFile(t, dir, "localhost-key.pem", leaf.KeyPEM)
}

// commentedKey matches a commented-out key line ("  # jwks_url: https://…"):
// removing "# " gives the line as it would be written.
var commentedKey = regexp.MustCompile(`^(\s*)# ( *[a-z_][a-z0-9_]*:( .*)?)$`)

// uncomment returns data with every commented-out key line made live, so
// alternatives that exclude each other (jwt key sources, redis addrs or
// sentinel) can be checked for presence.
func uncomment(data []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if m := commentedKey.FindStringSubmatch(line); m != nil {
			line = m[1] + m[2]
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}

// yamlPaths returns the value nodes of every key of a gateway.yaml, by the
// path language of schemaProps.
func yamlPaths(n *yaml.Node) map[string][]*yaml.Node {
	out := map[string][]*yaml.Node{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				out[p] = append(out[p], v)
				switch {
				case p == "upstreams":
					for j := 0; j+1 < len(v.Content); j += 2 {
						walk(v.Content[j+1], p+".*")
					}
				case p == "plugins":
					for j := 0; j+1 < len(v.Content); j += 2 {
						def := v.Content[j+1]
						kind := ""
						for x := 0; x+1 < len(def.Content); x += 2 {
							if def.Content[x].Value == "type" {
								kind = def.Content[x+1].Value
							}
						}
						walk(def, p+".*.("+kind+")")
					}
				case strings.HasSuffix(p, ".forward_claims"):
					// Claim names are values, not keys of the schema.
				default:
					walk(v, p)
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix+"[]")
			}
		}
	}
	walk(n, "")
	return out
}

// nodeText renders a value node the way flowYAML renders a default.
func nodeText(n *yaml.Node) string {
	if n.Kind == yaml.SequenceNode {
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			parts[i] = nodeText(c)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return n.Value
}

// TestProductionConfigComplete checks that configs/gateway.production.yaml
// writes every key of the schema (alternatives that exclude each other as
// commented-out lines), and each key that has a default with that default.
func TestProductionConfigComplete(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "configs/gateway.production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(uncomment(data), &doc); err != nil {
		t.Fatalf("the file with its commented-out keys made live is not YAML: %v", err)
	}
	written := yamlPaths(doc.Content[0])
	_, schema := loadSchema(t)
	props := schemaProps(t, schema)
	m, err := newModel()
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]*field{}
	for _, s := range m.sections {
		for _, f := range s.fields {
			fields[s.def+"."+f.key] = f
		}
	}
	for _, p := range sortedKeys(props) {
		nodes := written[p]
		// Inline plugin settings take the keys of the named instances:
		// writing each kind's keys once, either way, is enough.
		if alt, inline := namedEquivalent(p); inline {
			nodes = append(nodes, written[alt]...)
		}
		if len(nodes) == 0 {
			t.Errorf("%s is not written", p)
			continue
		}
		f := fields[props[p]]
		if f == nil || f.def == nil {
			continue
		}
		want := flowYAML(f.def)
		found := false
		var got []string
		for _, n := range nodes {
			found = found || sameValue(f, nodeText(n), want)
			got = append(got, nodeText(n))
		}
		if !found {
			t.Errorf("%s is written as %s, never with its default %s", p, strings.Join(got, ", "), want)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	set := map[string]bool{}
	for k := range m {
		set[k] = true
	}
	return sortedSet(set)
}

// namedEquivalent maps a key of inline plugin settings
// ("routes[].plugins[].jwt.leeway") to the same key of a named instance
// ("plugins.*.(jwt).leeway").
func namedEquivalent(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "routes[].plugins[].")
	if !ok {
		return "", false
	}
	kind, key, hasKey := strings.Cut(rest, ".")
	if !hasKey {
		return "plugins.*.(" + kind + ").type", true
	}
	return "plugins.*.(" + kind + ")." + key, true
}

// sameValue compares a written value with a default, durations and sizes
// by what they mean ("60s" is "1m").
func sameValue(f *field, got, want string) bool {
	switch {
	case strings.HasPrefix(f.typeName, "[duration]"):
		g, gerr := config.ParseDuration(got)
		w, werr := config.ParseDuration(want)
		return gerr == nil && werr == nil && g == w
	case strings.HasPrefix(f.typeName, "[size]"):
		g, gerr := config.ParseSize(got)
		w, werr := config.ParseSize(want)
		return gerr == nil && werr == nil && g == w
	}
	// A string that would read as a number is quoted in the default
	// ("1.2"), and its node's text is not.
	if u, err := strconv.Unquote(want); err == nil && got == u {
		return true
	}
	return got == want
}
