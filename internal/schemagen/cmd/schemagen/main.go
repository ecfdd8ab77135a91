// Command schemagen writes the files generated from the configuration
// structs: configs/gateway.schema.json, docs/configuration.md and the key
// tables of docs/plugins.md. Run it through `go generate ./internal/schemagen`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/gatewayd/gatewayd/internal/schemagen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("schemagen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "module root")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files, err := schemagen.Files(*root)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := os.WriteFile(filepath.Join(*root, p), files[p], 0o644); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}
