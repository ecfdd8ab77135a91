package router

import (
	"errors"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// testHeaders is a Headers over a canonical-name map.
type testHeaders map[string]string

func (h testHeaders) Peek(name string) []byte {
	v, ok := h[textproto.CanonicalMIMEHeaderKey(name)]
	if !ok {
		return nil
	}
	return []byte(v)
}

func newErrs(t *testing.T, routes []*Route) []string {
	t.Helper()
	tbl, err := New(routes)
	if tbl != nil {
		t.Errorf("New returned a table along with an error")
	}
	if err == nil {
		t.Fatal("New accepted the routes")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RouteError
		if !errors.As(e, &re) {
			t.Errorf("error %q is a %T, want *RouteError", e, e)
		}
		got = append(got, e.Error())
	}
	return got
}

func TestNewPatternErrors(t *testing.T) {
	tests := []struct {
		name       string
		giveRoutes []*Route
		wantErrs   []string
	}{
		{
			name:       "parameter inside a segment",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/item-{id}"}},
			wantErrs:   []string{`routes[0].match.path: a parameter is a whole segment such as {id} or {path...}, got "item-{id}"`},
		},
		{
			name:       "unclosed parameter",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{id"}},
			wantErrs:   []string{`routes[0].match.path: a parameter is a whole segment such as {id} or {path...}, got "{id"`},
		},
		{
			name:       "two parameters in a segment",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{a}{b}"}},
			wantErrs:   []string{`routes[0].match.path: a parameter is a whole segment such as {id} or {path...}, got "{a}{b}"`},
		},
		{
			name:       "empty name",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{}"}},
			wantErrs:   []string{`routes[0].match.path: parameter name "" must be an identifier (a letter or '_', then letters, digits or '_')`},
		},
		{
			name:       "name not an identifier",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{item-id}"}},
			wantErrs:   []string{`routes[0].match.path: parameter name "item-id" must be an identifier (a letter or '_', then letters, digits or '_')`},
		},
		{
			name:       "name starting with a digit",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{1st}"}},
			wantErrs:   []string{`routes[0].match.path: parameter name "1st" must be an identifier (a letter or '_', then letters, digits or '_')`},
		},
		{
			name:       "rest not last",
			giveRoutes: []*Route{{Name: "a", Path: "/files/{path...}/meta"}},
			wantErrs:   []string{`routes[0].match.path: {path...} matches the rest of the path and must be the last segment, got "/files/{path...}/meta"`},
		},
		{
			name:       "repeated name",
			giveRoutes: []*Route{{Name: "a", Path: "/v1/{id}/sub/{id}"}},
			wantErrs:   []string{`routes[0].match.path: parameter "id" is declared twice in "/v1/{id}/sub/{id}"`},
		},
		{
			name:       "too many parameters",
			giveRoutes: []*Route{{Name: "a", Path: "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"}},
			wantErrs:   []string{`routes[0].match.path: at most 8 parameters are allowed, got more in "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"`},
		},
		{
			name:       "parameter in a prefix",
			giveRoutes: []*Route{{Name: "a", PathPrefix: "/v1/{tenant}/"}},
			wantErrs:   []string{`routes[0].match.path_prefix: parameters are only allowed in match.path (a final {name...} captures the rest), got "/v1/{tenant}/"`},
		},
		{
			name:       "pattern not normalised",
			giveRoutes: []*Route{{Name: "a", Path: "/v1//{id}"}},
			wantErrs:   []string{`routes[0].match.path: must be normalised (no empty, "." or ".." segments): write "/v1/{id}", not "/v1//{id}"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newErrs(t, tt.giveRoutes); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("New errors:\n%q\nwant:\n%q", got, tt.wantErrs)
			}
		})
	}
}

func TestNewHeaderErrors(t *testing.T) {
	tests := []struct {
		name        string
		giveHeaders []Header
		wantErrs    []string
	}{
		{
			name:        "invalid name",
			giveHeaders: []Header{{Name: "X Canary", Value: "1"}},
			wantErrs:    []string{`routes[0].match.headers.X Canary: "X Canary" is not a valid header name`},
		},
		{
			name:        "empty value",
			giveHeaders: []Header{{Name: "X-Canary", Value: ""}},
			wantErrs:    []string{`routes[0].match.headers.X-Canary: the value must not be empty (a condition compares the exact value of a header that is present)`},
		},
		{
			name:        "value with white space around",
			giveHeaders: []Header{{Name: "X-Canary", Value: " 1"}},
			wantErrs:    []string{`routes[0].match.headers.X-Canary: the value must not start or end with white space (header values are read without it), got " 1"`},
		},
		{
			name:        "control byte",
			giveHeaders: []Header{{Name: "X-Canary", Value: "1\r\nX: y"}},
			wantErrs:    []string{`routes[0].match.headers.X-Canary: the value must not contain control characters, got "1\r\nX: y"`},
		},
		{
			name:        "same name in another case",
			giveHeaders: []Header{{Name: "X-Canary", Value: "1"}, {Name: "x-canary", Value: "2"}},
			wantErrs:    []string{`routes[0].match.headers.x-canary: header X-Canary is given twice (names are case-insensitive)`},
		},
		{
			name:        "host",
			giveHeaders: []Header{{Name: "host", Value: "api.example.com"}},
			wantErrs:    []string{`routes[0].match.headers.host: cannot match on Host: match the host with match.host`},
		},
		{
			name:        "hop-by-hop",
			giveHeaders: []Header{{Name: "Upgrade", Value: "websocket"}},
			wantErrs:    []string{`routes[0].match.headers.Upgrade: cannot match on Upgrade: it is a hop-by-hop header, removed before routing`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newErrs(t, []*Route{{Name: "a", Path: "/a", Headers: tt.giveHeaders}})
			if !slices.Equal(got, tt.wantErrs) {
				t.Errorf("New errors:\n%q\nwant:\n%q", got, tt.wantErrs)
			}
		})
	}
}

func TestNewRewriteErrors(t *testing.T) {
	tests := []struct {
		name       string
		givePath   string
		givePrefix string
		giveRw     string
		wantErr    string
	}{
		{name: "unknown parameter", givePath: "/v1/items/{id}", giveRw: "/internal/{idd}",
			wantErr: `routes[0].rewrite.path: unknown parameter {idd} (did you mean {id}?)`},
		{name: "unknown parameter far from any", givePath: "/v1/{tenant}/items/{item}", giveRw: "/internal/{zzzzzz}",
			wantErr: `routes[0].rewrite.path: unknown parameter {zzzzzz} (match.path declares {tenant}, {item})`},
		{name: "no parameters declared", givePath: "/v1/items", giveRw: "/internal/{id}",
			wantErr: `routes[0].rewrite.path: unknown parameter {id}: match.path declares no parameters`},
		{name: "rest used as segment", givePath: "/files/{path...}", giveRw: "/static/{path}",
			wantErr: `routes[0].rewrite.path: {path...} captures the rest of the path: write {path...}, not {path}`},
		{name: "segment used as rest", givePath: "/files/{name}", giveRw: "/static/{name...}",
			wantErr: `routes[0].rewrite.path: {name} is a one-segment parameter in match.path: write {name}, not {name...}`},
		{name: "rest not last", givePath: "/files/{path...}", giveRw: "/static/{path...}/x",
			wantErr: `routes[0].rewrite.path: {path...} must be the last segment of the template, got "/static/{path...}/x"`},
		{name: "relative", givePath: "/v1/items/{id}", giveRw: "internal/{id}",
			wantErr: `routes[0].rewrite.path: must start with "/", got "internal/{id}"`},
		{name: "dot segment", givePath: "/v1/items/{id}", giveRw: "/internal/../{id}",
			wantErr: `routes[0].rewrite.path: must be normalised (no empty, "." or ".." segments), got "/internal/../{id}"`},
		{name: "empty segment", givePath: "/v1/items/{id}", giveRw: "/internal//{id}",
			wantErr: `routes[0].rewrite.path: must be normalised (no empty, "." or ".." segments), got "/internal//{id}"`},
		{name: "parameter inside a segment", givePath: "/v1/items/{id}", giveRw: "/internal/item-{id}",
			wantErr: `routes[0].rewrite.path: a parameter is a whole segment such as {id} or {path...}, got "item-{id}"`},
		{name: "percent escape", givePath: "/v1/items/{id}", giveRw: "/internal/%41/{id}",
			wantErr: `routes[0].rewrite.path: is written decoded, like match.path, and escaped when sent: write it without percent escapes, got "/internal/%41/{id}"`},
		{name: "prefix route", givePrefix: "/v1/files/", giveRw: "/static/",
			wantErr: `routes[0].rewrite.path: needs match.path: a path_prefix route captures nothing to rewrite with; write match.path: "/v1/files/{rest...}" and use {rest...} in the template`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newErrs(t, []*Route{{Name: "a", Path: tt.givePath, PathPrefix: tt.givePrefix, Rewrite: tt.giveRw}})
			if len(got) != 1 || got[0] != tt.wantErr {
				t.Errorf("New errors:\n%q\nwant:\n%q", got, tt.wantErr)
			}
		})
	}
}

// Every way two routes can be equally specific for one request is an error
// naming both; every way they cannot is accepted.
func TestNewTies(t *testing.T) {
	canary := []Header{{Name: "X-Canary", Value: "1"}}
	tests := []struct {
		name      string
		giveA     Route
		giveB     Route
		wantErr   string
		wantOther int
	}{
		{
			name:    "same parameter pattern, other names",
			giveA:   Route{Name: "a", Path: "/v1/items/{id}"},
			giveB:   Route{Name: "b", Path: "/v1/items/{key}", Methods: []string{"GET"}},
			wantErr: `routes[1].match.path: route "b" has the same host, path pattern and methods (GET, HEAD) as routes[0] ("a")`,
		},
		{
			name:    "rest parameter and prefix of the same segments",
			giveA:   Route{Name: "a", PathPrefix: "/files/"},
			giveB:   Route{Name: "b", Path: "/files/{path...}"},
			wantErr: `routes[1].match.path: route "b" has the same host, path pattern and methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) as routes[0] ("a")`,
		},
		{
			name:    "rest parameter and prefix without slash",
			giveA:   Route{Name: "a", Path: "/files/{path...}", Methods: []string{"POST"}},
			giveB:   Route{Name: "b", PathPrefix: "/files", Methods: []string{"POST"}},
			wantErr: `routes[1].match.path_prefix: route "b" has the same host, path pattern and methods (POST) as routes[0] ("a")`,
		},
		{
			name:    "two rest parameters",
			giveA:   Route{Name: "a", Path: "/{tenant}/files/{a...}"},
			giveB:   Route{Name: "b", Path: "/{t}/files/{b...}"},
			wantErr: `routes[1].match.path: route "b" has the same host, path pattern and methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) as routes[0] ("a")`,
		},
		{
			name:    "same headers",
			giveA:   Route{Name: "a", Path: "/v1/items/{id}", Headers: canary},
			giveB:   Route{Name: "b", Path: "/v1/items/{id}", Headers: []Header{{Name: "x-canary", Value: "1"}}},
			wantErr: `routes[1].match.headers: route "b" has the same host, path pattern, methods (CONNECT, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE) and number of header conditions (1) as routes[0] ("a"), and one request can satisfy both: make the headers differ in a value or add a condition to one`,
		},
		{
			name:    "different headers one request can carry",
			giveA:   Route{Name: "a", PathPrefix: "/v1/", Headers: canary, Methods: []string{"GET"}},
			giveB:   Route{Name: "b", PathPrefix: "/v1", Headers: []Header{{Name: "X-Beta", Value: "yes"}}},
			wantErr: `routes[1].match.headers: route "b" has the same host, path_prefix, methods (GET, HEAD) and number of header conditions (1) as routes[0] ("a"), and one request can satisfy both: make the headers differ in a value or add a condition to one`,
		},
		{
			name:    "exact path and headers",
			giveA:   Route{Name: "a", Path: "/healthz", Headers: []Header{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}},
			giveB:   Route{Name: "b", Path: "/healthz", Headers: []Header{{Name: "X-B", Value: "2"}, {Name: "X-C", Value: "3"}}, Methods: []string{"DELETE"}},
			wantErr: `routes[1].match.headers: route "b" has the same host, path, methods (DELETE) and number of header conditions (2) as routes[0] ("a"), and one request can satisfy both: make the headers differ in a value or add a condition to one`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.giveA, tt.giveB
			tbl, err := New([]*Route{&a, &b})
			if tbl != nil || err == nil {
				t.Fatal("New accepted a tie")
			}
			var re *RouteError
			if !errors.As(err, &re) || re.Error() != tt.wantErr || re.Other != 0 || re.Index != 1 {
				t.Errorf("New error = %v (%+v), want %s naming routes[0]", err, re, tt.wantErr)
			}
		})
	}
}

func TestNewNoTies(t *testing.T) {
	canary := []Header{{Name: "X-Canary", Value: "1"}}
	tests := []struct {
		name  string
		giveA Route
		giveB Route
	}{
		{name: "parameter and literal", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", Path: "/v1/items/new"}},
		{name: "parameter and prefix", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", PathPrefix: "/v1/items/"}},
		{name: "parameter and rest", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", Path: "/v1/items/{rest...}"}},
		{name: "parameter with and without trailing slash", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", Path: "/v1/items/{id}/"}},
		{name: "parameter at different positions", giveA: Route{Name: "a", Path: "/v1/{kind}/list"}, giveB: Route{Name: "b", Path: "/v1/items/{id}"}},
		{name: "disjoint methods", giveA: Route{Name: "a", Path: "/v1/items/{id}", Methods: []string{"GET"}}, giveB: Route{Name: "b", Path: "/v1/items/{key}", Methods: []string{"DELETE"}}},
		{name: "more header conditions", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", Path: "/v1/items/{id}", Headers: canary}},
		{name: "headers that exclude each other", giveA: Route{Name: "a", Path: "/v1/items/{id}", Headers: canary}, giveB: Route{Name: "b", Path: "/v1/items/{id}", Headers: []Header{{Name: "X-CANARY", Value: "2"}}}},
		{name: "header value case matters", giveA: Route{Name: "a", PathPrefix: "/", Headers: []Header{{Name: "X-Env", Value: "Beta"}}}, giveB: Route{Name: "b", PathPrefix: "/", Headers: []Header{{Name: "X-Env", Value: "beta"}}}},
		{name: "other host", giveA: Route{Name: "a", Path: "/v1/items/{id}"}, giveB: Route{Name: "b", Host: "api.example.com", Path: "/v1/items/{id}"}},
		{name: "exact path and parameter path ending alike", giveA: Route{Name: "a", Path: "/a/"}, giveB: Route{Name: "b", Path: "/a/{x}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.giveA, tt.giveB
			if _, err := New([]*Route{&a, &b}); err != nil {
				t.Errorf("New: %v", err)
			}
		})
	}
}

// paramRoutes exercises every precedence rule of patterns and headers.
func paramRoutes() []*Route {
	return []*Route{
		{Name: "new-item", Path: "/v1/items/new", Methods: []string{"GET"}},
		{Name: "item", Path: "/v1/items/{id}", Methods: []string{"GET", "PUT"}},
		{Name: "item-canary", Path: "/v1/items/{id}", Methods: []string{"GET"}, Headers: []Header{{Name: "X-Canary", Value: "1"}}},
		{Name: "item-canary-eu", Path: "/v1/items/{id}", Methods: []string{"GET"}, Headers: []Header{{Name: "X-Canary", Value: "1"}, {Name: "X-Region", Value: "eu"}}},
		{Name: "item-slash", Path: "/v1/items/{id}/"},
		{Name: "item-part", Path: "/v1/items/{id}/parts/{part}", Methods: []string{"GET"}},
		{Name: "items", PathPrefix: "/v1/items/", Methods: []string{"POST"}},
		{Name: "any-list", Path: "/v1/{kind}/list", Methods: []string{"GET"}},
		{Name: "v1", PathPrefix: "/v1/"},
		{Name: "files", Path: "/files/{path...}", Methods: []string{"GET"}},
		{Name: "files-root", Path: "/files", Methods: []string{"GET"}},
		{Name: "file-meta", Path: "/files/{name}/meta", Methods: []string{"GET"}},
		{Name: "files-write", PathPrefix: "/files", Methods: []string{"PUT"}},
		{Name: "docs", Path: "/docs/{path...}", Methods: []string{"GET"}},
		{Name: "docs-write", PathPrefix: "/docs/", Methods: []string{"PUT"}},
		{Name: "tenant", Path: "/t/{tenant}/{rest...}"},
		{Name: "tenant-admin", Path: "/t/{tenant}/admin/{rest...}", Methods: []string{"GET"}},
		{Name: "beta", PathPrefix: "/", Headers: []Header{{Name: "X-Env", Value: "beta"}}},
		{Name: "root", Path: "/{page}", Methods: []string{"GET"}},
	}
}

func TestMatchParams(t *testing.T) {
	tests := []struct {
		name        string
		giveMethod  string
		givePath    string
		giveHeaders testHeaders
		wantRoute   string
		wantStatus  int
		wantAllow   string
		wantParams  []string
	}{
		{name: "literal beats parameter", giveMethod: "GET", givePath: "/v1/items/new", wantRoute: "new-item"},
		{name: "literal refusing the method is 405", giveMethod: "PUT", givePath: "/v1/items/new", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "parameter", giveMethod: "GET", givePath: "/v1/items/42", wantRoute: "item", wantParams: []string{"42"}},
		{name: "parameter beats prefix", giveMethod: "PUT", givePath: "/v1/items/42", wantRoute: "item", wantParams: []string{"42"}},
		{name: "parameter refusing the method is 405, not the prefix", giveMethod: "POST", givePath: "/v1/items/42", wantStatus: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "prefix below the parameter", giveMethod: "POST", givePath: "/v1/items/42/history", wantRoute: "items"},
		{name: "parameter is one segment", giveMethod: "GET", givePath: "/v1/items/42/history", wantStatus: 405, wantAllow: "POST"},
		{name: "parameter is never empty", giveMethod: "GET", givePath: "/v1/items/", wantStatus: 405, wantAllow: "POST"},
		{name: "trailing slash is its own pattern", giveMethod: "DELETE", givePath: "/v1/items/42/", wantRoute: "item-slash", wantParams: []string{"42"}},
		{name: "two parameters", giveMethod: "GET", givePath: "/v1/items/42/parts/7", wantRoute: "item-part", wantParams: []string{"42", "7"}},
		{name: "decoded bytes in a parameter", giveMethod: "GET", givePath: "/v1/items/a b;c", wantRoute: "item", wantParams: []string{"a b;c"}},
		{name: "leftmost literal wins over a later one", giveMethod: "GET", givePath: "/v1/items/list", wantRoute: "item", wantParams: []string{"list"}},
		{name: "parameter first segment", giveMethod: "GET", givePath: "/v1/users/list", wantRoute: "any-list", wantParams: []string{"users"}},
		{name: "backtrack from a literal to a parameter", giveMethod: "GET", givePath: "/v1/new/list", wantRoute: "any-list", wantParams: []string{"new"}},
		{name: "backtrack to the prefix", giveMethod: "GET", givePath: "/v1/users/other", wantRoute: "v1"},
		{name: "header condition wins", giveMethod: "GET", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "1"}, wantRoute: "item-canary", wantParams: []string{"42"}},
		{name: "more header conditions win", giveMethod: "GET", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "1", "X-Region": "eu"}, wantRoute: "item-canary-eu", wantParams: []string{"42"}},
		{name: "one of two conditions", giveMethod: "GET", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "1", "X-Region": "us"}, wantRoute: "item-canary", wantParams: []string{"42"}},
		{name: "header value is exact", giveMethod: "GET", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "1 "}, wantRoute: "item", wantParams: []string{"42"}},
		{name: "header value is case-sensitive", giveMethod: "GET", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "true"}, wantRoute: "item", wantParams: []string{"42"}},
		{name: "header route refusing the method leaves the others", giveMethod: "PUT", givePath: "/v1/items/42", giveHeaders: testHeaders{"X-Canary": "1"}, wantRoute: "item", wantParams: []string{"42"}},
		{name: "path beats headers", giveMethod: "GET", givePath: "/v1/items/new", giveHeaders: testHeaders{"X-Env": "beta"}, wantRoute: "new-item"},
		{name: "header route when nothing more specific", giveMethod: "GET", givePath: "/other/x", giveHeaders: testHeaders{"X-Env": "beta"}, wantRoute: "beta"},
		{name: "without the header a less specific route", giveMethod: "GET", givePath: "/about", wantRoute: "root", wantParams: []string{"about"}},
		{name: "without the header nothing", giveMethod: "GET", givePath: "/other/x", wantStatus: 404},
		{name: "rest", giveMethod: "GET", givePath: "/files/a/b/c.txt", wantRoute: "files", wantParams: []string{"a/b/c.txt"}},
		{name: "rest may be empty", giveMethod: "GET", givePath: "/files/", wantRoute: "files", wantParams: []string{""}},
		{name: "rest keeps a trailing slash", giveMethod: "GET", givePath: "/files/a/", wantRoute: "files", wantParams: []string{"a/"}},
		{name: "rest needs its slash", giveMethod: "GET", givePath: "/files", wantRoute: "files-root"},
		{name: "rest and prefix share a pattern", giveMethod: "PUT", givePath: "/files/a", wantRoute: "files-write"},
		{name: "rest and prefix 405", giveMethod: "POST", givePath: "/files/a", wantStatus: 405, wantAllow: "GET, HEAD, PUT"},
		{name: "exact path refusing is 405, not the prefix", giveMethod: "PUT", givePath: "/files", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "prefix without the slash", giveMethod: "PUT", givePath: "/docs", wantRoute: "docs-write"},
		{name: "405 at the end of the path leaves out the rest parameter", giveMethod: "GET", givePath: "/docs", wantStatus: 405, wantAllow: "PUT"},
		{name: "rest parameter beside a prefix", giveMethod: "GET", givePath: "/docs/x", wantRoute: "docs", wantParams: []string{"x"}},
		{name: "parameter beats rest", giveMethod: "GET", givePath: "/files/x/meta", wantRoute: "file-meta", wantParams: []string{"x"}},
		{name: "rest after a parameter", giveMethod: "DELETE", givePath: "/t/acme/users/1", wantRoute: "tenant", wantParams: []string{"acme", "users/1"}},
		{name: "longer rest wins", giveMethod: "GET", givePath: "/t/acme/admin/x", wantRoute: "tenant-admin", wantParams: []string{"acme", "x"}},
		{name: "longer rest refusing is 405", giveMethod: "POST", givePath: "/t/acme/admin/x", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "rest parameter needs the parameter", giveMethod: "GET", givePath: "/t/", wantStatus: 404},
		{name: "root parameter", giveMethod: "HEAD", givePath: "/index.html", wantRoute: "root", wantParams: []string{"index.html"}},
		{name: "root parameter never empty", giveMethod: "GET", givePath: "/", wantStatus: 404},
	}
	tbl, err := New(paramRoutes())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr Headers
			if tt.giveHeaders != nil {
				hdr = tt.giveHeaders
			}
			path := []byte(tt.givePath)
			got := tbl.Match([]byte(tt.giveMethod), nil, path, hdr)
			gotRoute := ""
			if got.Route != nil {
				gotRoute = got.Route.Name
			}
			var gotParams []string
			if got.Route != nil {
				for i := range got.Params.Len() {
					gotParams = append(gotParams, string(got.Params.Value(path, i)))
				}
			}
			if gotRoute != tt.wantRoute || got.Status != tt.wantStatus || string(got.Allow) != tt.wantAllow || !slices.Equal(gotParams, tt.wantParams) {
				t.Errorf("Match(%s %s %v) = route %q status %d allow %q params %q, want route %q status %d allow %q params %q",
					tt.giveMethod, tt.givePath, tt.giveHeaders, gotRoute, got.Status, got.Allow, gotParams,
					tt.wantRoute, tt.wantStatus, tt.wantAllow, tt.wantParams)
			}
		})
	}
}

// A header condition on a catch-all is no way around a protected path: the
// most specific pattern with a matching route still decides, and its 405 is
// final.
func TestMatchHeadersNoMethodFallThrough(t *testing.T) {
	tbl, err := New([]*Route{
		{Name: "public", PathPrefix: "/"},
		{Name: "beta-all", PathPrefix: "/", Headers: []Header{{Name: "X-Beta", Value: "1"}}},
		{Name: "users", Path: "/v1/users/{id}", Methods: []string{"GET"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []Headers{nil, testHeaders{"X-Beta": "1"}} {
		if got := tbl.Match([]byte("DELETE"), nil, []byte("/v1/users/1"), h); got.Status != 405 || string(got.Allow) != "GET, HEAD" {
			t.Errorf("DELETE /v1/users/1 with %v = %+v, want 405", h, got)
		}
	}
	if got := tbl.Match([]byte("DELETE"), nil, []byte("/v1/other"), testHeaders{"X-Beta": "1"}); got.Route == nil || got.Route.Name != "beta-all" {
		t.Errorf("DELETE /v1/other with X-Beta = %+v, want beta-all", got)
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name      string
		givePath  string
		giveRw    string
		giveReq   string
		wantRoute bool
		want      string
	}{
		{name: "one parameter", givePath: "/v1/items/{id}", giveRw: "/internal/items/{id}", giveReq: "/v1/items/42", want: "/internal/items/42"},
		{name: "reordered", givePath: "/v1/{tenant}/items/{id}", giveRw: "/items/{id}/tenant/{tenant}", giveReq: "/v1/acme/items/7", want: "/items/7/tenant/acme"},
		{name: "repeated parameter", givePath: "/v1/items/{id}", giveRw: "/items/{id}/{id}", giveReq: "/v1/items/42", want: "/items/42/42"},
		{name: "escaped on the way out", givePath: "/v1/items/{id}", giveRw: "/internal/items/{id}", giveReq: "/v1/items/a b;c?#%", want: "/internal/items/a%20b%3Bc%3F%23%25"},
		{name: "non-ASCII literal and value", givePath: "/v1/items/{id}", giveRw: "/intérieur/{id}", giveReq: "/v1/items/é", want: "/int%C3%A9rieur/%C3%A9"},
		{name: "rest", givePath: "/files/{path...}", giveRw: "/static/{path...}", giveReq: "/files/a/b/c.txt", want: "/static/a/b/c.txt"},
		{name: "empty rest", givePath: "/files/{path...}", giveRw: "/static/{path...}", giveReq: "/files/", want: "/static/"},
		{name: "rest with trailing slash", givePath: "/files/{path...}", giveRw: "/static/{path...}", giveReq: "/files/a/", want: "/static/a/"},
		{name: "rest at the root", givePath: "/{path...}", giveRw: "/{path...}", giveReq: "/a/b", want: "/a/b"},
		{name: "constant", givePath: "/v1/me", giveRw: "/internal/users/me/", giveReq: "/v1/me", want: "/internal/users/me/"},
		{name: "template trailing slash", givePath: "/v1/items/{id}", giveRw: "/items/{id}/", giveReq: "/v1/items/9", want: "/items/9/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Route{Name: "r", Path: tt.givePath, Rewrite: tt.giveRw}
			tbl, err := New([]*Route{r})
			if err != nil {
				t.Fatal(err)
			}
			rw := tbl.Rewrite(r)
			if rw == nil || rw.String() != tt.giveRw {
				t.Fatalf("Rewrite = %v, want the compiled %q", rw, tt.giveRw)
			}
			path := []byte(tt.giveReq)
			res := tbl.Match([]byte("GET"), nil, path, nil)
			if res.Route != r {
				t.Fatalf("Match(%s) = %+v, want the route", tt.giveReq, res)
			}
			got := rw.Append(nil, path, &res.Params)
			if string(got) != tt.want {
				t.Errorf("rewritten path = %q, want %q", got, tt.want)
			}
			if n, err := NormalizePath(nil, got); err != nil || !strings.EqualFold(string(AppendEscapedPath(nil, n)), string(got)) {
				t.Errorf("rewritten path %q is not in normal form (normalises to %q, %v)", got, n, err)
			}
		})
	}
	if tbl, _ := New([]*Route{{Name: "r", Path: "/a"}}); tbl.Rewrite(tbl.Routes()[0]) != nil {
		t.Errorf("Rewrite of a route without a template is not nil")
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		giveA, giveB string
		want         int
	}{
		{giveA: "path", giveB: "path", want: 0},
		{giveA: "paht", giveB: "path", want: 1},
		{giveA: "idd", giveB: "id", want: 1},
		{giveA: "abc", giveB: "xyz", want: 3},
		{giveA: "", giveB: "id", want: 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.giveA, tt.giveB); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.giveA, tt.giveB, got, tt.want)
		}
	}
}

// Without parameters a group is matched through its prefix index; header
// conditions behave as in the segment tree.
func TestMatchHeadersWithoutParameters(t *testing.T) {
	tbl, err := New([]*Route{
		{Name: "public", PathPrefix: "/"},
		{Name: "beta", PathPrefix: "/v1/", Headers: []Header{{Name: "X-Beta", Value: "1"}}},
		{Name: "beta-reports", PathPrefix: "/v1/reports", Methods: []string{"GET"}, Headers: []Header{{Name: "X-Beta", Value: "1"}}},
		{Name: "status", Path: "/v1/status", Headers: []Header{{Name: "X-Beta", Value: "1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	beta := testHeaders{"X-Beta": "1"}
	tests := []struct {
		giveMethod string
		givePath   string
		giveHdr    Headers
		wantRoute  string
		wantStatus int
	}{
		{giveMethod: "GET", givePath: "/v1/x", wantRoute: "public"},
		{giveMethod: "GET", givePath: "/v1/x", giveHdr: beta, wantRoute: "beta"},
		{giveMethod: "GET", givePath: "/v1/reports/q1", giveHdr: beta, wantRoute: "beta-reports"},
		{giveMethod: "POST", givePath: "/v1/reports/q1", giveHdr: beta, wantStatus: 405},
		{giveMethod: "POST", givePath: "/v1/reports/q1", wantRoute: "public"},
		{giveMethod: "GET", givePath: "/v1/status", wantRoute: "public"},
		{giveMethod: "GET", givePath: "/v1/status", giveHdr: beta, wantRoute: "status"},
	}
	for _, tt := range tests {
		got := tbl.Match([]byte(tt.giveMethod), nil, []byte(tt.givePath), tt.giveHdr)
		gotRoute := ""
		if got.Route != nil {
			gotRoute = got.Route.Name
		}
		if gotRoute != tt.wantRoute || got.Status != tt.wantStatus {
			t.Errorf("%s %s %v = route %q status %d, want %q %d", tt.giveMethod, tt.givePath, tt.giveHdr, gotRoute, got.Status, tt.wantRoute, tt.wantStatus)
		}
	}
}
