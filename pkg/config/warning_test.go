package config

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func TestWarningString(t *testing.T) {
	sec := Section{File: "g.yaml", Path: "routes[1].plugins[0].rbac", Node: &yaml.Node{Line: 7, Column: 9}}
	w := sec.Warnf("rules", "methods %s are denied", "PUT")
	if got, want := w.String(), "g.yaml:7: routes[1].plugins[0].rbac.rules: warning: methods PUT are denied"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	ws := SortWarnings([]*Warning{
		Warnf("g.yaml", &yaml.Node{Line: 9}, "b", "x"),
		Warnf("g.yaml", &yaml.Node{Line: 3}, "a", "y"),
		Warnf("g.yaml", &yaml.Node{Line: 9}, "b", "x"),
	})
	if len(ws) != 2 || ws[0].Line != 3 || ws[1].Line != 9 {
		t.Fatalf("SortWarnings = %v", ws)
	}
}
