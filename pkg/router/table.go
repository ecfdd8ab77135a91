package router

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Route is one route as the gateway declares it. The router reads the match
// fields once, in New, and hands the same pointer back from Match; a Route
// must not be modified after it has been passed to New.
type Route struct {
	// Name identifies the route in errors, logs and metrics.
	Name string
	// Host, when set, restricts the route to one host: an exact name, compared
	// case-insensitively with the request's Host without its port, or
	// "*.example.com", which matches one or more labels in front of
	// example.com but not example.com itself.
	Host string
	// Path matches exactly this normalised path. Exactly one of Path and
	// PathPrefix is set.
	Path string
	// PathPrefix matches this path and everything below it, in whole
	// segments: "/v1/admin" and "/v1/admin/" both match "/v1/admin" and
	// "/v1/admin/x" but never "/v1/adminx"; "/" matches every path.
	PathPrefix string
	// Methods lists the upper-case methods the route accepts; empty means
	// every method, standard or not. A route that accepts GET also accepts
	// HEAD. Request methods are compared case-sensitively.
	Methods []string
	// Value is opaque to the router.
	Value any
}

// RouteError is one problem New found in a route. Index is the route's
// position in the slice given to New and Field the key under the route that
// holds the problem ("name", "match", "match.host", "match.path",
// "match.path_prefix", "match.methods[1]"), so the caller can point at the
// line of its configuration file.
type RouteError struct {
	Index int
	Field string
	Msg   string
}

// Error returns the error as "routes[INDEX].FIELD: MSG".
func (e *RouteError) Error() string {
	s := "routes[" + strconv.Itoa(e.Index) + "]"
	if e.Field != "" {
		s += "." + e.Field
	}
	return s + ": " + e.Msg
}

// Result is the outcome of Table.Match.
type Result struct {
	// Route is the selected route, or nil when Status is not 0.
	Route *Route
	// Status is 0 when a route was selected, 404 when no route matches the
	// path, and 405 when none of the routes at the most specific matching
	// path accepts the method.
	Status int
	// Allow is, for a 405, the value of the Allow header: the sorted union of
	// the methods of the routes at the most specific path that matches, such
	// as "GET, HEAD, POST". It is shared by every call and must not be
	// modified.
	Allow []byte
}

// Table is a compiled route table. It is immutable after New and safe for
// concurrent use.
type Table struct {
	routes []*Route
	// hosts and wildcards are keyed by the lower-case host name; a wildcard
	// "*.example.com" is stored under "example.com".
	hosts     map[string]*group
	wildcards map[string]*group
	anyHost   *group
	// wildMin and wildMax bound the length of the keys in wildcards, so
	// Match skips suffixes that cannot be one.
	wildMin, wildMax int
}

// group holds the routes of one host selector.
type group struct {
	exact map[string]*entry
	// prefix is keyed by the prefix without its trailing slash, so "/" is
	// stored under "".
	prefix map[string]*entry
	// maxPrefix is the longest key in prefix, to skip lookups that cannot hit.
	maxPrefix int
}

// entry holds the routes that share a host selector and a path, in
// declaration order; New guarantees that their method sets are disjoint.
type entry struct {
	routes []compiled
	// methods is the union of the method sets of routes that list methods.
	methods methodSet
}

type compiled struct {
	route   *Route
	methods methodSet // with HEAD added when GET is present
	any     bool      // no Methods: every method, known or not
}

func (e *entry) pick(m methodSet) *Route {
	for i := range e.routes {
		c := &e.routes[i]
		if c.any || c.methods&m != 0 {
			return c.route
		}
	}
	return nil
}

// New validates routes and compiles them into a Table. It reports every
// problem it finds, each as a *RouteError, joined with errors.Join: a nil
// route, a route without exactly one of Path and PathPrefix, a path that does
// not start with "/", is not in normal form or is written percent-encoded, an
// invalid host, an invalid, unknown, lower-case or repeated method, a name
// used twice, and two routes with the same host and path (or prefix) whose
// method sets overlap.
func New(routes []*Route) (*Table, error) {
	t := &Table{
		routes:    append([]*Route(nil), routes...),
		hosts:     make(map[string]*group),
		wildcards: make(map[string]*group),
	}
	var errs []error
	report := func(i int, field, format string, args ...any) {
		errs = append(errs, &RouteError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	names := make(map[string]int)
	type slot struct {
		index   int
		methods methodSet
	}
	seen := make(map[string][]slot)
	for i, r := range routes {
		if r == nil {
			report(i, "", "route is nil")
			continue
		}
		if r.Name != "" {
			if j, ok := names[r.Name]; ok {
				report(i, "name", "duplicate route name %q, also used by routes[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		ok := true
		host, wildcard, msg := parseHost(r.Host)
		if msg != "" {
			report(i, "match.host", "%s", msg)
			ok = false
		}
		methods, anyMethod := allMethods, len(r.Methods) == 0
		if !anyMethod {
			methods = 0
			for j, m := range r.Methods {
				bit, msg := parseMethod(m)
				switch {
				case msg != "":
				case methods&bit != 0:
					msg = fmt.Sprintf("duplicate method %q", m)
				default:
					methods |= bit
					continue
				}
				report(i, "match.methods["+strconv.Itoa(j)+"]", "%s", msg)
				ok = false
			}
			methods = methods.withHead()
		}
		var field, path string
		switch {
		case r.Path == "" && r.PathPrefix == "":
			report(i, "match", "one of path or path_prefix is required")
			continue
		case r.Path != "" && r.PathPrefix != "":
			report(i, "match", "path and path_prefix are mutually exclusive")
			continue
		case r.Path != "":
			field, path = "match.path", r.Path
		default:
			field, path = "match.path_prefix", r.PathPrefix
		}
		if msg := checkPath(path); msg != "" {
			report(i, field, "%s", msg)
			continue
		}
		if !ok {
			continue
		}
		key := path
		if field == "match.path_prefix" {
			key = strings.TrimSuffix(path, "/")
		}
		hostKey := host
		if wildcard {
			hostKey = "*." + host
		}
		dupKey := hostKey + "\x00" + field + "\x00" + key
		for _, s := range seen[dupKey] {
			if overlap := s.methods & methods; overlap != 0 {
				other := routes[s.index]
				report(i, field, "route %q has the same host, %s and methods (%s) as routes[%d] (%q)",
					r.Name, field[len("match."):], overlap, s.index, other.Name)
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		seen[dupKey] = append(seen[dupKey], slot{index: i, methods: methods})
		t.add(host, wildcard, field == "match.path", key, compiled{route: r, methods: methods, any: anyMethod})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (t *Table) add(host string, wildcard, exact bool, key string, c compiled) {
	var g *group
	switch {
	case host == "":
		if t.anyHost == nil {
			t.anyHost = &group{}
		}
		g = t.anyHost
	case wildcard:
		g = t.wildcards[host]
		if g == nil {
			g = &group{}
			t.wildcards[host] = g
			if t.wildMin == 0 || len(host) < t.wildMin {
				t.wildMin = len(host)
			}
			t.wildMax = max(t.wildMax, len(host))
		}
	default:
		g = t.hosts[host]
		if g == nil {
			g = &group{}
			t.hosts[host] = g
		}
	}
	m := &g.prefix
	if exact {
		m = &g.exact
	}
	if *m == nil {
		*m = make(map[string]*entry)
	}
	e := (*m)[key]
	if e == nil {
		e = &entry{}
		(*m)[key] = e
	}
	e.routes = append(e.routes, c)
	if !c.any {
		e.methods |= c.methods
	}
	if !exact && len(key) > g.maxPrefix {
		g.maxPrefix = len(key)
	}
}

// Routes returns the routes given to New, in their original order.
func (t *Table) Routes() []*Route {
	return append([]*Route(nil), t.routes...)
}

// maxHostLength bounds the host names Match looks up; a longer Host header
// (DNS names stop at 253 bytes) only reaches routes without a host.
const maxHostLength = 255

// Match selects the route for a request. path must be the output of
// NormalizePath; host is the Host header as received (a port and a final dot
// are ignored, letters are compared case-insensitively); method is compared
// case-sensitively (RFC 9110: "get" is not "GET").
//
// Candidates are taken from the exact host first, then from the wildcard
// hosts from the longest suffix to the shortest, then from the routes without
// a host; within each, an exact Path comes before the prefixes, longest
// first. The first candidate path that matches decides: the route there that
// accepts the method is selected, and when none does the result is a 405
// whose Allow lists the methods of the routes at that path. A less specific
// path is never tried for a method the more specific one refuses. When no
// route matches the path the result is a 404. Match does not allocate.
func (t *Table) Match(method, host, path []byte) Result {
	m := methodBit(method)
	if len(t.hosts) > 0 || len(t.wildcards) > 0 {
		var buf [maxHostLength]byte
		if h := canonicalHost(&buf, host); len(h) > 0 {
			if g := t.hosts[string(h)]; g != nil {
				if e := g.match(path); e != nil {
					return e.decide(m)
				}
			}
			if len(t.wildcards) > 0 {
				for i := 1; i < len(h)-1; i++ {
					if h[i] != '.' {
						continue
					}
					if n := len(h) - i - 1; n > t.wildMax {
						continue
					} else if n < t.wildMin {
						break
					}
					if g := t.wildcards[string(h[i+1:])]; g != nil {
						if e := g.match(path); e != nil {
							return e.decide(m)
						}
					}
				}
			}
		}
	}
	if t.anyHost != nil {
		if e := t.anyHost.match(path); e != nil {
			return e.decide(m)
		}
	}
	return Result{Status: 404}
}

// decide selects the route of e that accepts method m, or answers 405 with
// the methods of e's routes. Every route of an entry that refuses a method
// lists methods, so the Allow value is never empty.
func (e *entry) decide(m methodSet) Result {
	if r := e.pick(m); r != nil {
		return Result{Route: r}
	}
	return Result{Status: 405, Allow: allowValues[e.methods]}
}

// match returns the most specific entry of g whose path matches: the exact
// path, else the longest prefix; nil when none does.
func (g *group) match(path []byte) *entry {
	if g.exact != nil {
		if e := g.exact[string(path)]; e != nil {
			return e
		}
	}
	if g.prefix == nil {
		return nil
	}
	q := path
	if n := len(q); n > 0 && q[n-1] == '/' {
		q = q[:n-1]
	}
	for {
		if len(q) <= g.maxPrefix {
			if e := g.prefix[string(q)]; e != nil {
				return e
			}
		}
		i := bytes.LastIndexByte(q, '/')
		if i < 0 {
			return nil
		}
		q = q[:i]
	}
}

// canonicalHost writes host to buf without its port and final dot, in lower
// case, and returns it; it returns nil when the name does not fit.
func canonicalHost(buf *[maxHostLength]byte, host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i >= 0 {
			host = host[:i+1]
		}
	} else if i := bytes.IndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1]
	}
	if len(host) > len(buf) {
		return nil
	}
	for i, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(host)]
}

// parseHost returns the lower-case lookup key of a route's host and whether it
// is a wildcard, or a message saying what is wrong with it.
func parseHost(h string) (key string, wildcard bool, msg string) {
	if h == "" {
		return "", false, ""
	}
	name := strings.ToLower(h)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name, wildcard = rest, true
	}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") && !wildcard {
		for i := 1; i < len(name)-1; i++ {
			if c := name[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.') {
				return "", false, fmt.Sprintf("invalid IPv6 literal %q", h)
			}
		}
		if len(name) == 2 {
			return "", false, fmt.Sprintf("invalid IPv6 literal %q", h)
		}
		return name, false, ""
	}
	if strings.IndexByte(name, ':') >= 0 {
		return "", false, fmt.Sprintf("must not include a port, got %q", h)
	}
	if strings.IndexByte(name, '*') >= 0 {
		return "", false, fmt.Sprintf("a wildcard is only allowed as a leading \"*.\", got %q", h)
	}
	if len(name) > maxHostLength {
		return "", false, fmt.Sprintf("must be at most %d bytes long", maxHostLength)
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return "", false, fmt.Sprintf("must be a host name such as \"api.example.com\" or \"*.example.com\", got %q", h)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false, fmt.Sprintf("invalid character %q in host %q", c, h)
			}
		}
	}
	return name, wildcard, ""
}

// parseMethod returns the bit of a route's method or a message saying what is
// wrong with it.
func parseMethod(m string) (methodSet, string) {
	if !isToken(m) {
		return 0, fmt.Sprintf("%q is not a valid method token", m)
	}
	if bit := methodBit([]byte(m)); bit != 0 {
		return bit, ""
	}
	if up := strings.ToUpper(m); methodBit([]byte(up)) != 0 {
		return 0, fmt.Sprintf("methods are case-sensitive: write %q, not %q", up, m)
	}
	return 0, fmt.Sprintf("unknown method %q, want one of %s", m, allMethods)
}

// checkPath returns a message when p cannot match a normalised request path.
func checkPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("must start with \"/\", got %q", p)
	}
	if len(p) > MaxPathLength {
		return fmt.Sprintf("must be at most %d bytes long", MaxPathLength)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf("must not contain control characters, got %q", p)
		}
	}
	// Request paths are matched decoded, so a route written with escapes
	// would never match the request the operator had in mind.
	for i := 0; i+2 < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		_, ok1 := unhex(p[i+1])
		_, ok2 := unhex(p[i+2])
		if ok1 && ok2 {
			if dec, err := NormalizePath(nil, []byte(p)); err == nil {
				return fmt.Sprintf("is matched against the decoded request path: write %q, not %q", dec, p)
			}
			return fmt.Sprintf("is matched against the decoded request path: write it without percent escapes, not %q", p)
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || s == "" && i < len(segs)-1 {
			if n, err := NormalizePath(nil, AppendEscapedPath(nil, []byte(p))); err == nil {
				return fmt.Sprintf("must be normalised (no empty, \".\" or \"..\" segments): write %q, not %q", n, p)
			}
			return fmt.Sprintf("must be normalised (no empty, \".\" or \"..\" segments), got %q", p)
		}
	}
	return ""
}
