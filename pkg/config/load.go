package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads and parses the file at path. See Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a gateway.yaml. On error the returned Config is still
// non-nil when the YAML itself was readable, so callers (the -check
// command) can go on to report plugin errors too.
func Parse(file string, data []byte) (*Config, error) {
	root, err := ParseNode(file, data)
	if err != nil {
		return nil, err
	}
	cfg := &Config{File: file, Hash: sha256.Sum256(data)}
	var errs errList
	errs.add(ExpandEnv(file, root))
	errs.add(DecodeStrict(file, root, "", cfg))
	cfg.applyDefaults()
	// Validation adds what decoding could not see, without repeating a
	// field decoding already reported. It also reads the certificate files
	// the configuration names, which the hash then covers.
	verr := cfg.validate()
	cfg.Hash = cfg.fileHash(data)
	return cfg, Merge(errs.err(), verr)
}

// ParseNode parses data into a YAML node tree, returning the document's
// top-level node. Syntax errors name the file and line.
func ParseNode(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "the file is empty"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errorf(file, root, "", "expected a mapping at the top of the file, got "+kindName(root))
	}
	return root, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(file string, err error) error {
	msg := err.Error()
	hint := ""
	if strings.Contains(msg, "did not find expected ',' or '}'") {
		// Path parameters make this common: { path: /items/{id} } ends the
		// mapping at the parameter's '}'.
		hint = ` (inside { ... } a value holding '{', '}', '[', ']' or ',' must be quoted, e.g. { path: "/items/{id}" })`
	}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: "invalid YAML: " + m[2] + hint}
	}
	return &Error{File: file, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ") + hint}
}

var envRe = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// ExpandEnv replaces ${VAR} (and ${VAR:-default}) in every scalar value of
// the tree from the environment; "$$" is a literal "$". An unset variable
// without a default is an error naming it and the field.
func ExpandEnv(file string, root *yaml.Node) error {
	var errs errList
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinPath(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, IndexPath(path, i))
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "$") {
				return
			}
			out := envRe.ReplaceAllStringFunc(n.Value, func(m string) string {
				if m == "$$" {
					return "$"
				}
				sm := envRe.FindStringSubmatch(m)
				if v, ok := os.LookupEnv(sm[1]); ok && (v != "" || sm[2] == "") {
					return v
				}
				if sm[2] != "" {
					return sm[2][2:]
				}
				errs.add(Errorf(file, n, path, "environment variable "+sm[1]+" is not set"))
				return ""
			})
			if out != n.Value {
				n.Value = out
				n.Style = 0
				n.Tag = resolveTag(out)
			}
		}
	}
	walk(root, "")
	return errs.err()
}

func resolveTag(s string) string {
	var n yaml.Node
	if s == "" {
		return "!!str"
	}
	if err := yaml.Unmarshal([]byte(s), &n); err != nil || len(n.Content) == 0 || n.Content[0].Kind != yaml.ScalarNode {
		return "!!str"
	}
	return n.Content[0].Tag
}

// sortErrors orders *Error leaves by file and line, removing duplicates.
func sortErrors(err error) error {
	errs := Errors(err)
	if len(errs) < 2 {
		return err
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, aok := errs[i].(*Error)
		b, bok := errs[j].(*Error)
		if !aok || !bok {
			return aok && !bok
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	out := errs[:0]
	seen := map[string]bool{}
	for _, e := range errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// SortErrors orders the leaves of err by file and line, removing duplicates.
func SortErrors(err error) error { return sortErrors(err) }
