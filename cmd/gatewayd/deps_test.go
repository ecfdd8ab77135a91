package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTemplatePackages: the linker keeps every exported method of every
// reachable type once a reachable function looks methods up by a name
// known only at run time, as text/template does. Built the way the
// Makefile builds it (-tags grpcnotrace, which leaves out
// golang.org/x/net/trace, the only importer today), gatewayd must not link
// a template package: with one the binary grows from about 26 to 44 MB,
// and most of it ends up resident (docs/operations.md, "Memory").
func TestNoTemplatePackages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-tags", "grpcnotrace", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "text/template", "html/template", "golang.org/x/net/trace":
			t.Errorf("gatewayd links %s: find its importer with go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/gatewayd", p)
		}
	}
}
