package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
)

// runAPIKey is `authd apikey`: it generates a random API key, prints it
// once and prints the entry for the api-key plugin's keys file, which holds
// only the key's SHA-256.
func runAPIKey(args []string, rand io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authd apikey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "the key's id in the keys file (required)")
	sub := fs.String("sub", "", "the identity's subject (default: the id)")
	roles := fs.String("roles", "", "comma-separated roles, e.g. admin,deploy")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	expires := fs.String("expires", "", "optional expiry, RFC 3339 (2027-01-01T00:00:00Z)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *id == "" {
		fmt.Fprintln(stderr, "usage: authd apikey --id ID [--sub SUB] [--roles a,b] [--scopes x,y] [--expires RFC3339]")
		return 2
	}
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			fmt.Fprintf(stderr, "authd apikey: --expires: expected an RFC 3339 time such as 2027-01-01T00:00:00Z, got %q\n", *expires)
			return 2
		}
		if !t.After(time.Now()) {
			fmt.Fprintf(stderr, "authd apikey: --expires: %s is not in the future\n", *expires)
			return 2
		}
	}
	key, sum, err := apikey.Generate(rand)
	if err != nil {
		fmt.Fprintln(stderr, "authd apikey:", err)
		return 1
	}
	entry := apikey.Entry{ID: *id, SHA256: sum, Sub: *sub, Roles: list(*roles), Scopes: list(*scopes), Expires: *expires}
	if entry.Sub == "" {
		entry.Sub = entry.ID
	}
	line, err := json.Marshal(entry)
	if err != nil {
		fmt.Fprintln(stderr, "authd apikey:", err)
		return 1
	}
	fmt.Fprintf(stdout, "API key (shown only now; give it to the client, it is not stored anywhere):\n%s\n\n", key)
	fmt.Fprintf(stdout, "Add this entry to the keys file and reload the gateway:\n%s\n", line)
	return 0
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
