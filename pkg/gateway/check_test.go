package gateway

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkFile runs what `gatewayd -check` runs and returns its error lines.
func checkFile(t *testing.T, file string) string {
	t.Helper()
	_, errs := checkFileWarnings(t, file)
	return errs
}

// checkFileWarnings runs what `gatewayd -check` runs and returns its
// warning lines and its error lines.
func checkFileWarnings(t *testing.T, file string) (warnings, errs string) {
	t.Helper()
	cfg, err := config.Load(file)
	ws, err := CheckWarnings(cfg, err, builtin.Registry())
	var wl, el []string
	for _, w := range ws {
		wl = append(wl, w.String())
	}
	for _, e := range config.Errors(err) {
		el = append(el, e.Error())
	}
	lines := func(xs []string) string {
		if len(xs) == 0 {
			return ""
		}
		return strings.Join(xs, "\n") + "\n"
	}
	return lines(wl), lines(el)
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/gateway -run TestConfigFiles -update)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestConfigFilesInvalid(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/config/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rel := strings.TrimPrefix(file, "../../")
			wd, _ := os.Getwd()
			// Errors name the file as the operator passed it: run from the
			// module root so the golden text holds repository paths.
			t.Chdir(filepath.Join(wd, "../.."))
			got := checkFile(t, rel)
			if got == "" {
				t.Fatal("no error for an invalid file")
			}
			golden(t, filepath.Join(wd, strings.TrimSuffix(file, ".yaml")+".err"), got)
		})
	}
}

// TestConfigFilesWarning: each file loads (no errors) and -check prints
// exactly the warnings of its .warn file.
func TestConfigFilesWarning(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/config/warning/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			rel := strings.TrimPrefix(file, "../../")
			wd, _ := os.Getwd()
			t.Chdir(filepath.Join(wd, "../.."))
			warnings, errs := checkFileWarnings(t, rel)
			if errs != "" {
				t.Fatalf("errors:\n%s", errs)
			}
			if warnings == "" {
				t.Fatal("no warning")
			}
			golden(t, filepath.Join(wd, strings.TrimSuffix(file, ".yaml")+".warn"), warnings)
		})
	}
}

func TestConfigFilesValid(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/config/valid/*.yaml")
	files = append(files, "../../configs/gateway.yaml")
	t.Setenv("JWT_SECRET", "gT5Cewnrhg1Q4fFosFccACG5EsuxY7nakljr73N2P-E0EoVa")
	t.Setenv("REDIS_PASSWORD", "")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			warnings, got := checkFileWarnings(t, file)
			if got != "" {
				t.Fatalf("valid file rejected:\n%s", got)
			}
			if warnings != "" {
				t.Fatalf("valid file warned:\n%s", warnings)
			}
			if strings.HasPrefix(file, "../../testdata/") {
				cfg, _ := config.Load(file)
				golden(t, strings.TrimSuffix(file, ".yaml")+".golden", dumpRoutes(t, cfg))
			}
		})
	}
}

// dumpRoutes renders the compiled route table of cfg.
func dumpRoutes(t *testing.T, cfg *config.Config) string {
	t.Helper()
	d := checkDeps(builtin.Registry())
	defer d.close()
	gen, err := build(cfg, d.deps)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.close()
	var b strings.Builder
	for _, r := range gen.table.Routes() {
		rt := r.Value.(*route)
		methods := append([]string(nil), r.Methods...)
		sort.Strings(methods)
		b.WriteString("route " + r.Name + "\n")
		if r.Host != "" {
			b.WriteString("  host: " + r.Host + "\n")
		}
		if r.Path != "" {
			b.WriteString("  path: " + r.Path + "\n")
		} else {
			b.WriteString("  path_prefix: " + r.PathPrefix + "\n")
		}
		if len(methods) > 0 {
			b.WriteString("  methods: " + strings.Join(methods, ",") + "\n")
		}
		for _, h := range r.Headers {
			b.WriteString("  header: " + h.Name + ": " + h.Value + "\n")
		}
		if rt.rewrite != nil {
			b.WriteString("  rewrite: " + rt.rewrite.String() + "\n")
		}
		b.WriteString("  upstream: " + rt.upstreamName + "\n")
		if len(rt.stripPrefix) > 0 {
			b.WriteString("  strip_prefix: " + string(rt.stripPrefix) + "\n")
		}
		if rt.preserveHost {
			b.WriteString("  preserve_host: true\n")
		}
		if rt.timeout > 0 {
			b.WriteString("  timeout: " + rt.timeout.String() + "\n")
		}
		if rt.websocket {
			b.WriteString("  websocket: idle " + rt.wsIdle.String() + "\n")
		}
		if k := rt.chain.Kinds(); len(k) > 0 {
			b.WriteString("  plugins: " + strings.Join(k, ", ") + "\n")
		}
	}
	return b.String()
}
