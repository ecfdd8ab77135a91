package config

import (
	"strings"
	"testing"
)

// runtimeBase is a valid file whose runtime: settings start on line 7.
const runtimeBase = `upstreams:
  app: { targets: ["http://127.0.0.1:9002"] }
routes:
  - name: all
    match: { path_prefix: / }
    upstream: app
runtime:
`

func TestRuntimeSettings(t *testing.T) {
	cfg, err := Parse("gateway.yaml", []byte(runtimeBase+"  gc_percent: 50\n  memory_limit: 64MiB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.GCPercent != 50 || cfg.Runtime.MemoryLimit != 64<<20 {
		t.Fatalf("runtime = %+v", cfg.Runtime)
	}
	cfg, err = Parse("gateway.yaml", []byte(strings.TrimSuffix(runtimeBase, "runtime:\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.GCPercent != 0 || cfg.Runtime.MemoryLimit != 0 {
		t.Fatalf("runtime without a section = %+v, want unset", cfg.Runtime)
	}

	for _, tc := range []struct{ give, want string }{
		{"  gc_percent: 5", "gateway.yaml:8: runtime.gc_percent: must be between 10 and 1000, got 5"},
		{"  gc_percent: 5000", "gateway.yaml:8: runtime.gc_percent: must be between 10 and 1000, got 5000"},
		{"  gc_percent: -1", "gateway.yaml:8: runtime.gc_percent: must be between 10 and 1000, got -1"},
		{"  memory_limit: 8MiB", "gateway.yaml:8: runtime.memory_limit: must be at least 16MiB, got 8MiB"},
		{"  gc_precent: 50", `gateway.yaml:8: runtime.gc_precent: unknown field`},
	} {
		_, err := Parse("gateway.yaml", []byte(runtimeBase+tc.give+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.give, err, tc.want)
		}
	}
}
