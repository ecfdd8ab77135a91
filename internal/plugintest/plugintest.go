// Package plugintest helps plugin tests build instances from YAML the way
// the gateway does.
package plugintest

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"gopkg.in/yaml.v3"
)

// Section returns the settings src (a YAML mapping; "" for a bare plugin
// name) as the gateway hands them to a factory, in file gateway.yaml at the
// dotted path.
func Section(t testing.TB, path, src string) config.Section {
	t.Helper()
	sec := config.Section{File: "gateway.yaml", Path: path}
	if src == "" {
		return sec
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Content) == 0 {
		t.Fatalf("empty YAML: %q", src)
	}
	sec.Node = doc.Content[0]
	return sec
}
