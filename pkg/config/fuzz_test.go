package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the loader panic, and that every
// error it reports is positioned in the file.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../../testdata/config/valid", "../../testdata/config/invalid", "../../configs"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("routes: [{name: a, match: {path: /}, upstream: x, plugins: [{ratelimit: {limit: 1}}]}]"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		for _, e := range Errors(err) {
			if ce, ok := e.(*Error); !ok || ce.File != "fuzz.yaml" || ce.Msg == "" {
				t.Fatalf("unpositioned error %T: %v", e, e)
			}
		}
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}
