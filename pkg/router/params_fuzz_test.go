package router

import (
	"strings"
	"testing"
)

// FuzzMatchParams checks, for any raw request path, that a parameter route
// never matches across a segment boundary: a {name} capture is one
// non-empty segment without '/' (and never "." or ".."), a {name...}
// capture is the normalised rest after a '/', the captures put back into
// the route's pattern give the request path again, and a rewrite built from
// them is in normal form.
func FuzzMatchParams(f *testing.F) {
	for _, s := range []string{
		"/v1/items/42", "/v1/items/a%2Fb", "/v1/items/%2e%2e", "/v1/items/..%2F..%2Fadmin",
		"/v1/items/42/parts/7", "/files/a/b/../c", "/files/", "/files", "/t/acme/admin/x/",
		"/v1/items//42", "/v1/items/%2F", "/x%2Fy", "/v1/items/a%3Bb", "/t/%2e/admin/",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	routes := paramRoutes()
	rewrites := map[string]string{
		"item": "/internal/items/{id}", "item-part": "/p/{part}/i/{id}", "files": "/static/{path...}",
		"tenant": "/{tenant}/{rest...}", "any-list": "/lists/{kind}", "root": "/pages/{page}/",
	}
	patterns := map[*Route]pattern{}
	for _, r := range routes {
		r.Rewrite = rewrites[r.Name]
		p := r.Path
		if p == "" {
			p = r.PathPrefix
		}
		pat, msg := parsePattern(p, r.Path == "")
		if msg != "" {
			f.Fatal(msg)
		}
		patterns[r] = pat
	}
	tbl, err := New(routes)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, canary bool) {
		path, err := NormalizePath(nil, raw)
		if err != nil {
			return
		}
		var hdr Headers
		if canary {
			hdr = testHeaders{"X-Canary": "1", "X-Env": "beta"}
		}
		res := tbl.Match([]byte("GET"), nil, path, hdr)
		if res.Route == nil {
			return
		}
		pat := patterns[res.Route]
		if res.Params.Len() != len(pat.names) {
			t.Fatalf("Match(%.200q) = %s with %d params, its pattern has %d", path, res.Route.Name, res.Params.Len(), len(pat.names))
		}
		// Rebuild the request path from the pattern and the captures.
		var b strings.Builder
		k := 0
		for _, s := range pat.segs {
			b.WriteByte('/')
			switch s.kind {
			case segLit:
				b.WriteString(s.lit)
			case segParam:
				v := string(res.Params.Value(path, k))
				if v == "" || strings.Contains(v, "/") || v == "." || v == ".." {
					t.Fatalf("Match(%.200q) = %s: {%s} captured %q, not one segment", path, res.Route.Name, s.name, v)
				}
				b.WriteString(v)
				k++
			case segRest:
				v := string(res.Params.Value(path, k))
				if strings.HasPrefix(v, "/") || strings.Contains(v, "//") {
					t.Fatalf("Match(%.200q) = %s: {%s...} captured %q", path, res.Route.Name, s.name, v)
				}
				b.WriteString(v)
				k++
			}
		}
		if got := b.String(); pat.prefix {
			if got != string(path) && !strings.HasPrefix(string(path), got+"/") && !(got == "" && path[0] == '/') {
				t.Fatalf("Match(%.200q) = prefix route %s (%q)", path, res.Route.Name, got)
			}
		} else if got != string(path) {
			t.Fatalf("Match(%.200q) = %s, whose pattern with the captures gives %q", path, res.Route.Name, got)
		}
		// Escaping may take the upstream path past MaxPathLength, the limit
		// on what NormalizePath reads from clients: check the others.
		if rw := tbl.Rewrite(res.Route); rw != nil {
			up := rw.Append(nil, path, &res.Params)
			if len(up) > MaxPathLength {
				return
			}
			n, err := NormalizePath(nil, up)
			if err != nil || string(AppendEscapedPath(nil, n)) != string(up) {
				t.Fatalf("rewrite of %.200q by %s = %.200q, not in normal form (%.200q, %v)", path, res.Route.Name, up, n, err)
			}
		}
	})
}

// FuzzPrefixIndex checks that a group without parameters, matched through
// its prefix index, decides exactly as its segment tree does.
func FuzzPrefixIndex(f *testing.F) {
	for _, s := range []string{"/v1/users/42", "/v1/auth/login", "/v1/admin/audit/x", "/", "/static", "/v1/usersx", "/reports/"} {
		f.Add([]byte(s), uint8(0), false)
	}
	routes := precedenceRoutes()
	routes = append(routes, &Route{Name: "beta", PathPrefix: "/v1/", Headers: []Header{{Name: "X-Beta", Value: "1"}}})
	indexed, err := New(routes)
	if err != nil {
		f.Fatal(err)
	}
	walked, err := New(routes)
	if err != nil {
		f.Fatal(err)
	}
	for _, g := range walked.hosts {
		g.params = true
	}
	for _, g := range walked.wildcards {
		g.params = true
	}
	walked.anyHost.params = true
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"}
	hosts := []string{"", "api.example.com", "a.tenants.example.com", "a.eu.tenants.example.com"}
	f.Fuzz(func(t *testing.T, raw []byte, pick uint8, beta bool) {
		path, err := NormalizePath(nil, raw)
		if err != nil {
			return
		}
		var hdr Headers
		if beta {
			hdr = testHeaders{"X-Beta": "1"}
		}
		m, h := []byte(methods[int(pick)%len(methods)]), []byte(hosts[int(pick/8)%len(hosts)])
		a, b := indexed.Match(m, h, path, hdr), walked.Match(m, h, path, hdr)
		if a.Route != b.Route || a.Status != b.Status || string(a.Allow) != string(b.Allow) {
			t.Fatalf("%s %s %.200q: prefix index gives %+v, segment tree %+v", m, h, path, a, b)
		}
	})
}
