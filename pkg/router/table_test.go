package router

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name       string
		giveRoutes []*Route
		wantErrs   []string
	}{
		{
			name:       "nil route",
			giveRoutes: []*Route{{Name: "a", Path: "/a"}, nil},
			wantErrs:   []string{`routes[1]: route is nil`},
		},
		{
			name:       "no path",
			giveRoutes: []*Route{{Name: "a"}},
			wantErrs:   []string{`routes[0].match: one of path or path_prefix is required`},
		},
		{
			name:       "path and prefix",
			giveRoutes: []*Route{{Name: "a", Path: "/a", PathPrefix: "/a/"}},
			wantErrs:   []string{`routes[0].match: path and path_prefix are mutually exclusive`},
		},
		{
			name:       "relative path",
			giveRoutes: []*Route{{Name: "a", Path: "v1/users"}},
			wantErrs:   []string{`routes[0].match.path: must start with "/", got "v1/users"`},
		},
		{
			name:       "relative prefix",
			giveRoutes: []*Route{{Name: "a", PathPrefix: "*"}},
			wantErrs:   []string{`routes[0].match.path_prefix: must start with "/", got "*"`},
		},
		{
			name:       "double slash",
			giveRoutes: []*Route{{Name: "a", PathPrefix: "/v1//admin/"}},
			wantErrs:   []string{`routes[0].match.path_prefix: must be normalised (no empty, "." or ".." segments): write "/v1/admin/", not "/v1//admin/"`},
		},
		{
			name:       "dot dot segment",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/x/../admin"}},
			wantErrs:   []string{`routes[0].match.path: must be normalised (no empty, "." or ".." segments): write "/v1/admin", not "/v1/x/../admin"`},
		},
		{
			name:       "final dot segment",
			giveRoutes: []*Route{{Name: "a", PathPrefix: "/v1/."}},
			wantErrs:   []string{`routes[0].match.path_prefix: must be normalised (no empty, "." or ".." segments): write "/v1/", not "/v1/."`},
		},
		{
			name:       "percent-encoded path",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/%61dmin"}},
			wantErrs:   []string{`routes[0].match.path: is matched against the decoded request path: write "/v1/admin", not "/v1/%61dmin"`},
		},
		{
			name:       "control byte",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/\nadmin"}},
			wantErrs:   []string{`routes[0].match.path: must not contain control characters, got "/v1/\nadmin"`},
		},
		{
			name:       "lower-case method",
			giveRoutes: []*Route{{Name: "a", Path: "/a", Methods: []string{"GET", "post"}}},
			wantErrs:   []string{`routes[0].match.methods[1]: methods are case-sensitive: write "POST", not "post"`},
		},
		{
			name:       "unknown method",
			giveRoutes: []*Route{{Name: "a", Path: "/a", Methods: []string{"FETCH"}}},
			wantErrs:   []string{`routes[0].match.methods[0]: unknown method "FETCH", want one of CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE`},
		},
		{
			name:       "invalid method token",
			giveRoutes: []*Route{{Name: "a", Path: "/a", Methods: []string{"GE T", ""}}},
			wantErrs: []string{
				`routes[0].match.methods[0]: "GE T" is not a valid method token`,
				`routes[0].match.methods[1]: "" is not a valid method token`,
			},
		},
		{
			name:       "repeated method",
			giveRoutes: []*Route{{Name: "a", Path: "/a", Methods: []string{"GET", "POST", "GET"}}},
			wantErrs:   []string{`routes[0].match.methods[2]: duplicate method "GET"`},
		},
		{
			name:       "host with port",
			giveRoutes: []*Route{{Name: "a", Host: "api.example.com:8080", Path: "/a"}},
			wantErrs:   []string{`routes[0].match.host: must not include a port, got "api.example.com:8080"`},
		},
		{
			name:       "inner wildcard",
			giveRoutes: []*Route{{Name: "a", Host: "api.*.example.com", Path: "/a"}},
			wantErrs:   []string{`routes[0].match.host: a wildcard is only allowed as a leading "*.", got "api.*.example.com"`},
		},
		{
			name:       "bare wildcard",
			giveRoutes: []*Route{{Name: "a", Host: "*", Path: "/a"}},
			wantErrs:   []string{`routes[0].match.host: a wildcard is only allowed as a leading "*.", got "*"`},
		},
		{
			name:       "empty label",
			giveRoutes: []*Route{{Name: "a", Host: "api..example.com", Path: "/a"}},
			wantErrs:   []string{`routes[0].match.host: must be a host name such as "api.example.com" or "*.example.com", got "api..example.com"`},
		},
		{
			name:       "host with path",
			giveRoutes: []*Route{{Name: "a", Host: "example.com/x", Path: "/a"}},
			wantErrs:   []string{`routes[0].match.host: invalid character '/' in host "example.com/x"`},
		},
		{
			name:       "duplicate name",
			giveRoutes: []*Route{{Name: "a", Path: "/a"}, {Name: "a", Path: "/b"}},
			wantErrs:   []string{`routes[1].name: duplicate route name "a", also used by routes[0]`},
		},
		{
			name:       "same exact path",
			giveRoutes: []*Route{{Name: "a", Path: "/a"}, {Name: "b", Path: "/a"}},
			wantErrs:   []string{`routes[1].match.path: route "b" has the same host, path and methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) as routes[0] ("a")`},
		},
		{
			name: "same prefix with and without slash",
			giveRoutes: []*Route{
				{Name: "a", PathPrefix: "/v1/admin", Methods: []string{"GET", "POST"}},
				{Name: "b", PathPrefix: "/v1/admin/", Methods: []string{"POST", "PUT"}},
			},
			wantErrs: []string{`routes[1].match.path_prefix: route "b" has the same host, path_prefix and methods (POST) as routes[0] ("a")`},
		},
		{
			name: "head implied by get",
			giveRoutes: []*Route{
				{Name: "a", Path: "/a", Methods: []string{"GET"}},
				{Name: "b", Path: "/a", Methods: []string{"HEAD"}},
			},
			wantErrs: []string{`routes[1].match.path: route "b" has the same host, path and methods (HEAD) as routes[0] ("a")`},
		},
		{
			name: "any method overlaps",
			giveRoutes: []*Route{
				{Name: "a", PathPrefix: "/a", Methods: []string{"DELETE"}},
				{Name: "b", PathPrefix: "/a"},
			},
			wantErrs: []string{`routes[1].match.path_prefix: route "b" has the same host, path_prefix and methods (DELETE) as routes[0] ("a")`},
		},
		{
			name: "same host in other case",
			giveRoutes: []*Route{
				{Name: "a", Host: "API.example.com", PathPrefix: "/"},
				{Name: "b", Host: "api.EXAMPLE.com", PathPrefix: "/", Methods: []string{"GET"}},
			},
			wantErrs: []string{`routes[1].match.path_prefix: route "b" has the same host, path_prefix and methods (GET, HEAD) as routes[0] ("a")`},
		},
		{
			name: "same wildcard",
			giveRoutes: []*Route{
				{Name: "a", Host: "*.example.com", Path: "/x"},
				{Name: "b", Host: "*.example.com", Path: "/x"},
			},
			wantErrs: []string{`routes[1].match.path: route "b" has the same host, path and methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) as routes[0] ("a")`},
		},
		{
			name: "every error reported",
			giveRoutes: []*Route{
				{Name: "ok", PathPrefix: "/"},
				{Name: "bad", Host: "a:1", Path: "x", Methods: []string{"get"}},
				{Name: "ok", Path: "/a", PathPrefix: "/a"},
				{Name: "dup", PathPrefix: "/"},
			},
			wantErrs: []string{
				`routes[1].match.host: must not include a port, got "a:1"`,
				`routes[1].match.methods[0]: methods are case-sensitive: write "GET", not "get"`,
				`routes[1].match.path: must start with "/", got "x"`,
				`routes[2].name: duplicate route name "ok", also used by routes[0]`,
				`routes[2].match: path and path_prefix are mutually exclusive`,
				`routes[3].match.path_prefix: route "dup" has the same host, path_prefix and methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) as routes[0] ("ok")`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := New(tt.giveRoutes)
			if tbl != nil {
				t.Errorf("New returned a table along with an error")
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("New error = %v, want errors joined by errors.Join", err)
			}
			var got []string
			for _, e := range joined.Unwrap() {
				var re *RouteError
				if !errors.As(e, &re) {
					t.Errorf("error %q is a %T, want *RouteError", e, e)
				}
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.wantErrs) {
				t.Errorf("New errors:\n%q\nwant:\n%q", got, tt.wantErrs)
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	tests := []struct {
		name       string
		giveRoutes []*Route
	}{
		{name: "empty", giveRoutes: nil},
		{
			name: "same path with disjoint methods",
			giveRoutes: []*Route{
				{Name: "read", PathPrefix: "/v1/users/", Methods: []string{"GET"}},
				{Name: "write", PathPrefix: "/v1/users", Methods: []string{"POST", "PUT", "PATCH", "DELETE"}},
			},
		},
		{
			name: "exact path and prefix on the same path",
			giveRoutes: []*Route{
				{Name: "exact", Path: "/v1/admin"},
				{Name: "prefix", PathPrefix: "/v1/admin"},
			},
		},
		{
			name: "exact paths with and without trailing slash",
			giveRoutes: []*Route{
				{Name: "a", Path: "/v1/admin"},
				{Name: "b", Path: "/v1/admin/"},
			},
		},
		{
			name: "same path on other hosts",
			giveRoutes: []*Route{
				{Name: "none", PathPrefix: "/"},
				{Name: "exact", Host: "example.com", PathPrefix: "/"},
				{Name: "wild", Host: "*.example.com", PathPrefix: "/"},
				{Name: "ipv4", Host: "127.0.0.1", PathPrefix: "/"},
				{Name: "ipv6", Host: "[::1]", PathPrefix: "/"},
			},
		},
		{
			name: "literal percent and special bytes",
			giveRoutes: []*Route{
				{Name: "pct", Path: "/100%"},
				{Name: "bs", Path: `/a\b`},
				{Name: "utf8", Path: "/café/"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := New(tt.giveRoutes)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := tbl.Routes(); !slices.Equal(got, tt.giveRoutes) {
				t.Errorf("Routes() = %v, want the routes given to New", got)
			}
		})
	}
}

// precedenceRoutes is a table that exercises every precedence rule.
func precedenceRoutes() []*Route {
	return []*Route{
		{Name: "login", Path: "/v1/auth/login", Methods: []string{"POST"}},
		{Name: "auth", PathPrefix: "/v1/auth/"},
		{Name: "users-read", PathPrefix: "/v1/users", Methods: []string{"GET"}},
		{Name: "users-write", PathPrefix: "/v1/users/", Methods: []string{"POST", "PUT", "DELETE"}},
		{Name: "user-me", Path: "/v1/users/me", Methods: []string{"GET"}},
		{Name: "admin", PathPrefix: "/v1/admin/"},
		{Name: "admin-audit", PathPrefix: "/v1/admin/audit", Methods: []string{"GET"}},
		{Name: "api-host", Host: "api.example.com", PathPrefix: "/v1/"},
		{Name: "api-reports", Host: "api.example.com", Path: "/reports", Methods: []string{"POST"}},
		{Name: "tenant", Host: "*.tenants.example.com", PathPrefix: "/"},
		{Name: "eu-tenant", Host: "*.eu.tenants.example.com", PathPrefix: "/"},
		{Name: "tenant-reports", Host: "*.Tenants.Example.com", PathPrefix: "/reports", Methods: []string{"GET"}},
		{Name: "reports", Path: "/reports", Methods: []string{"GET"}},
		{Name: "static", PathPrefix: "/static", Methods: []string{"GET"}},
		{Name: "health", Path: "/healthz", Methods: []string{"GET"}},
		{Name: "upload", Path: "/upload", Methods: []string{"POST", "PUT"}},
		{Name: "upload-options", Path: "/upload", Methods: []string{"OPTIONS"}},
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name       string
		giveMethod string
		giveHost   string
		givePath   string
		wantRoute  string
		wantStatus int
		wantAllow  string
	}{
		{name: "exact beats prefix", giveMethod: "POST", givePath: "/v1/auth/login", wantRoute: "login"},
		{name: "exact path refusing the method is 405", giveMethod: "GET", givePath: "/v1/auth/login", wantStatus: 405, wantAllow: "POST"},
		{name: "prefix below exact", giveMethod: "POST", givePath: "/v1/auth/refresh", wantRoute: "auth"},
		{name: "prefix matches itself", giveMethod: "GET", givePath: "/v1/auth", wantRoute: "auth"},
		{name: "prefix matches itself with slash", giveMethod: "GET", givePath: "/v1/auth/", wantRoute: "auth"},
		{name: "exact path with method", giveMethod: "GET", givePath: "/v1/users/me", wantRoute: "user-me"},
		{name: "no prefix for other method on exact path", giveMethod: "POST", givePath: "/v1/users/me", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "prefix without slash", giveMethod: "GET", givePath: "/v1/users", wantRoute: "users-read"},
		{name: "method split on one prefix read", giveMethod: "GET", givePath: "/v1/users/42", wantRoute: "users-read"},
		{name: "method split on one prefix write", giveMethod: "DELETE", givePath: "/v1/users/42", wantRoute: "users-write"},
		{name: "head through get", giveMethod: "HEAD", givePath: "/v1/users/42", wantRoute: "users-read"},
		{name: "head through get on exact path", giveMethod: "HEAD", givePath: "/healthz", wantRoute: "health"},
		{name: "405 lists the union", giveMethod: "PATCH", givePath: "/v1/users/42", wantStatus: 405, wantAllow: "DELETE, GET, HEAD, POST, PUT"},
		{name: "405 on exact path", giveMethod: "POST", givePath: "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "405 unknown method", giveMethod: "PROPFIND", givePath: "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "405 lower-case method", giveMethod: "get", givePath: "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "unknown method on any-method route", giveMethod: "PROPFIND", givePath: "/v1/auth/x", wantRoute: "auth"},
		{name: "405 from routes sharing a path", giveMethod: "GET", givePath: "/upload", wantStatus: 405, wantAllow: "OPTIONS, POST, PUT"},
		{name: "second route on a shared path", giveMethod: "OPTIONS", givePath: "/upload", wantRoute: "upload-options"},
		{name: "first route on a shared path", giveMethod: "PUT", givePath: "/upload", wantRoute: "upload"},
		{name: "whole segments only", giveMethod: "GET", givePath: "/v1/usersx", wantStatus: 404},
		{name: "exact path is not a prefix", giveMethod: "GET", givePath: "/healthz/x", wantStatus: 404},
		{name: "root is not matched by deeper prefixes", giveMethod: "GET", givePath: "/", wantStatus: 404},
		{name: "longest prefix", giveMethod: "GET", givePath: "/v1/admin/audit/2024", wantRoute: "admin-audit"},
		{name: "no shorter prefix for other method", giveMethod: "POST", givePath: "/v1/admin/audit", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "longest prefix whole segments", giveMethod: "GET", givePath: "/v1/admin/auditx", wantRoute: "admin"},
		{name: "host beats a longer path", giveMethod: "GET", giveHost: "api.example.com", givePath: "/v1/users/42", wantRoute: "api-host"},
		{name: "host case and port ignored", giveMethod: "GET", giveHost: "API.Example.COM:8443", givePath: "/v1/x", wantRoute: "api-host"},
		{name: "host final dot ignored", giveMethod: "GET", giveHost: "api.example.com.", givePath: "/v1/x", wantRoute: "api-host"},
		{name: "host falls back to host-less", giveMethod: "GET", giveHost: "api.example.com", givePath: "/healthz", wantRoute: "health"},
		{name: "other host", giveMethod: "GET", giveHost: "www.example.com", givePath: "/v1/users/42", wantRoute: "users-read"},
		{name: "wildcard one label", giveMethod: "GET", giveHost: "a.tenants.example.com", givePath: "/x", wantRoute: "tenant"},
		{name: "wildcard two labels", giveMethod: "GET", giveHost: "a.b.tenants.example.com", givePath: "/x", wantRoute: "tenant"},
		{name: "wildcard not apex", giveMethod: "GET", giveHost: "tenants.example.com", givePath: "/x", wantStatus: 404},
		{name: "wildcard not a suffix of a label", giveMethod: "GET", giveHost: "atenants.example.com", givePath: "/x", wantStatus: 404},
		{name: "wildcard needs a label", giveMethod: "GET", giveHost: ".tenants.example.com", givePath: "/x", wantStatus: 404},
		{name: "longest wildcard", giveMethod: "GET", giveHost: "a.eu.tenants.example.com", givePath: "/x", wantRoute: "eu-tenant"},
		{name: "wildcard longest prefix", giveMethod: "GET", giveHost: "A.Tenants.Example.Com", givePath: "/reports/q1", wantRoute: "tenant-reports"},
		{name: "wildcard no shorter prefix for method", giveMethod: "POST", giveHost: "a.tenants.example.com", givePath: "/reports/q1", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "wildcard beats host-less exact", giveMethod: "POST", giveHost: "a.tenants.example.com", givePath: "/healthz", wantRoute: "tenant"},
		{name: "exact host before host-less", giveMethod: "POST", giveHost: "api.example.com", givePath: "/reports", wantRoute: "api-reports"},
		{name: "no host-less after exact host refuses", giveMethod: "GET", giveHost: "api.example.com", givePath: "/reports", wantStatus: 405, wantAllow: "POST"},
		{name: "host-less for other hosts", giveMethod: "GET", giveHost: "www.example.com", givePath: "/reports", wantRoute: "reports"},
		{name: "no host header", giveMethod: "GET", givePath: "/nothing", wantStatus: 404},
		{name: "ipv6 host", giveMethod: "GET", giveHost: "[::1]:8080", givePath: "/static/app.js", wantRoute: "static"},
		{name: "overlong host", giveMethod: "GET", giveHost: string(make([]byte, 300)), givePath: "/static/app.js", wantRoute: "static"},
	}
	tbl, err := New(precedenceRoutes())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tbl.Match([]byte(tt.giveMethod), []byte(tt.giveHost), []byte(tt.givePath), nil)
			gotRoute := ""
			if got.Route != nil {
				gotRoute = got.Route.Name
			}
			if gotRoute != tt.wantRoute || got.Status != tt.wantStatus || string(got.Allow) != tt.wantAllow {
				t.Errorf("Match(%s %s %s) = route %q status %d allow %q, want route %q status %d allow %q",
					tt.giveMethod, tt.giveHost, tt.givePath, gotRoute, got.Status, got.Allow,
					tt.wantRoute, tt.wantStatus, tt.wantAllow)
			}
		})
	}
}

// A method the most specific path refuses is a 405 there, never a pass to a
// less specific route: with a public catch-all, a protected prefix that lists
// its methods must not be reachable with another method through it.
func TestMatchNoMethodFallThrough(t *testing.T) {
	tbl, err := New([]*Route{
		{Name: "public", PathPrefix: "/"},
		{Name: "users", PathPrefix: "/v1/users/", Methods: []string{"GET", "POST"}},
		{Name: "users-cors", PathPrefix: "/v1/users/", Methods: []string{"OPTIONS"}},
		{Name: "login", Path: "/v1/auth/login", Methods: []string{"POST"}},
		{Name: "auth", PathPrefix: "/v1/auth/", Methods: []string{"GET", "POST"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		giveMethod string
		givePath   string
		wantRoute  string
		wantAllow  string
	}{
		{giveMethod: "GET", givePath: "/v1/users/123", wantRoute: "users"},
		{giveMethod: "HEAD", givePath: "/v1/users/123", wantRoute: "users"},
		{giveMethod: "OPTIONS", givePath: "/v1/users/123", wantRoute: "users-cors"},
		{giveMethod: "PATCH", givePath: "/v1/users/123", wantAllow: "GET, HEAD, OPTIONS, POST"},
		{giveMethod: "DELETE", givePath: "/v1/users", wantAllow: "GET, HEAD, OPTIONS, POST"},
		{giveMethod: "FOO", givePath: "/v1/users/123", wantAllow: "GET, HEAD, OPTIONS, POST"},
		{giveMethod: "get", givePath: "/v1/users/123", wantAllow: "GET, HEAD, OPTIONS, POST"},
		{giveMethod: "Get", givePath: "/v1/users/123", wantAllow: "GET, HEAD, OPTIONS, POST"},
		{giveMethod: "GET", givePath: "/v1/auth/login", wantAllow: "POST"},
		{giveMethod: "DELETE", givePath: "/v1/auth/refresh", wantAllow: "GET, HEAD, POST"},
		{giveMethod: "PATCH", givePath: "/v1/usersx", wantRoute: "public"},
		{giveMethod: "FOO", givePath: "/elsewhere", wantRoute: "public"},
		{giveMethod: "get", givePath: "/", wantRoute: "public"},
	}
	for _, tt := range tests {
		t.Run(tt.giveMethod+" "+tt.givePath, func(t *testing.T) {
			got := tbl.Match([]byte(tt.giveMethod), nil, []byte(tt.givePath), nil)
			gotRoute := ""
			if got.Route != nil {
				gotRoute = got.Route.Name
			}
			wantStatus := 0
			if tt.wantAllow != "" {
				wantStatus = 405
			}
			if gotRoute != tt.wantRoute || got.Status != wantStatus || string(got.Allow) != tt.wantAllow {
				t.Errorf("Match = route %q status %d allow %q, want route %q status %d allow %q",
					gotRoute, got.Status, got.Allow, tt.wantRoute, wantStatus, tt.wantAllow)
			}
		})
	}
}

func TestMatchReturnsTheRouteValue(t *testing.T) {
	r := &Route{Name: "a", PathPrefix: "/", Value: 42}
	tbl, err := New([]*Route{r})
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.Match([]byte("GET"), nil, []byte("/x"), nil); got.Route != r || got.Route.Value != 42 {
		t.Errorf("Match returned %+v, want the route given to New", got.Route)
	}
}

func TestRoutesIsACopy(t *testing.T) {
	routes := precedenceRoutes()
	tbl, err := New(routes)
	if err != nil {
		t.Fatal(err)
	}
	routes[0] = nil
	got := tbl.Routes()
	if got[0] == nil || got[0].Name != "login" {
		t.Fatalf("Routes()[0] = %v after the caller's slice changed, want login", got[0])
	}
	got[1] = nil
	if tbl.Routes()[1] == nil {
		t.Errorf("changing the slice Routes returned changed the table")
	}
}

func TestMatchConcurrent(t *testing.T) {
	tbl, err := New(precedenceRoutes())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if r := tbl.Match([]byte("GET"), []byte("a.eu.tenants.example.com"), []byte("/x"), nil); r.Route == nil || r.Route.Name != "eu-tenant" {
					t.Errorf("Match = %+v, want eu-tenant", r)
					return
				}
				if r := tbl.Match([]byte("PATCH"), nil, []byte("/v1/users/1"), nil); r.Status != 405 {
					t.Errorf("Match = %+v, want 405", r)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestAllowValues(t *testing.T) {
	tests := []struct {
		give methodSet
		want string
	}{
		{give: methodGet.withHead(), want: "GET, HEAD"},
		{give: methodBit([]byte("POST")) | methodBit([]byte("DELETE")), want: "DELETE, POST"},
		{give: allMethods, want: "CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(allowValues[tt.give]); got != tt.want {
				t.Errorf("allowValues[%b] = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}
