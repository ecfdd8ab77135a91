package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeanDependencies: most of the binary is resident once gatewayd has
// served a few requests (the kernel maps the file around every page it
// touches; docs/operations.md, "Memory"), so what it links is memory.
//
//   - A template package makes the linker keep every exported method of
//     every reachable type (its run-time method lookups by name): the
//     binary grew from 26 to 44 MB when one came in through gRPC.
//   - gRPC and the protobuf runtime came with the OpenTelemetry OTLP
//     exporters, whether tracing was on or not: about 5 MB of the file and
//     3 MiB resident. pkg/tracing writes OTLP itself, with protowire.
func TestLeanDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "text/template", p == "html/template", p == "golang.org/x/net/trace",
			p == "google.golang.org/grpc", strings.HasPrefix(p, "google.golang.org/grpc/"),
			p == "google.golang.org/protobuf/proto", strings.HasPrefix(p, "go.opentelemetry.io/proto/"),
			strings.HasPrefix(p, "go.opentelemetry.io/otel/exporters/"):
			t.Errorf("gatewayd links %s: find its importer with go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/gatewayd", p)
		}
	}
}
