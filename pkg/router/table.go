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
	// Path matches this normalised path. It may hold parameters, each a
	// whole segment: {name} matches exactly one non-empty segment and
	// {name...}, only as the last segment, the rest of the path after its
	// slash (possibly empty): "/v1/items/{id}" matches "/v1/items/42" but
	// not "/v1/items/" or "/v1/items/42/x"; "/files/{path...}" matches
	// "/files/", "/files/a" and "/files/a/b", not "/files". Names are
	// identifiers, unique in the path, at most MaxParams of them. Exactly
	// one of Path and PathPrefix is set.
	Path string
	// PathPrefix matches this path and everything below it, in whole
	// segments: "/v1/admin" and "/v1/admin/" both match "/v1/admin" and
	// "/v1/admin/x" but never "/v1/adminx"; "/" matches every path.
	PathPrefix string
	// Methods lists the upper-case methods the route accepts; empty means
	// every method, standard or not. A route that accepts GET also accepts
	// HEAD. Request methods are compared case-sensitively.
	Methods []string
	// Headers are conditions on request headers, all of which must hold:
	// the first header of each name (compared case-insensitively) must have
	// exactly the value given. A request that fails them is matched as if
	// the route did not exist.
	Headers []Header
	// Rewrite, when set, is the template of the upstream path: literal
	// segments and the parameters of Path, written the same way
	// ("/internal/items/{id}", "/static/{path...}"). Table.Rewrite returns
	// it compiled.
	Rewrite string
	// Value is opaque to the router.
	Value any
}

// RouteError is one problem New found in a route. Index is the route's
// position in the slice given to New and Field the key under the route that
// holds the problem ("name", "match", "match.host", "match.path",
// "match.path_prefix", "match.methods[1]", "match.headers.X-Canary",
// "rewrite.path"), so the caller can point at the line of its configuration
// file. Other is, for a conflict between two routes, the index of the
// route declared first, and -1 otherwise.
type RouteError struct {
	Index int
	Field string
	Msg   string
	Other int
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
	// Params are the parameters the selected route's Path captured, as
	// offsets into the path given to Match.
	Params Params
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
	rewrites         map[*Route]*Rewrite
}

// group holds the routes of one host selector.
type group struct {
	// exact holds the paths without parameters: the most specific pattern
	// for the one path each matches, so it is looked up first.
	exact map[string]*entry
	// root is the segment tree of the other patterns: paths with
	// parameters and prefixes.
	root *node
	// prefix indexes the prefix entries of root by the prefix without its
	// trailing slash ("/" under ""), and maxPrefix is its longest key. When
	// the group has no parameters (params false) Match walks it instead of
	// root: a few lookups of whole prefixes instead of one per segment.
	prefix    map[string]*entry
	maxPrefix int
	params    bool
}

// node is one segment position of the tree. Its children are tried from
// the most specific to the least: the literal segment, then a {name}, then
// the catch-all (a path_prefix ending here, or a final {name...}).
type node struct {
	// lits are the literal children; litMap indexes them once there are
	// more than a linear scan handles quickly.
	lits   []litChild
	litMap map[string]*node
	param  *node
	// end holds the patterns that end here; rest those that match the rest
	// of the path from here.
	end, rest *entry
}

type litChild struct {
	seg  string
	node *node
}

// maxLinearChildren is the most literal children looked up by a scan.
const maxLinearChildren = 8

// child returns the literal child for seg, or nil.
func (n *node) child(seg []byte) *node {
	if n.litMap != nil {
		return n.litMap[string(seg)]
	}
	for i := range n.lits {
		if n.lits[i].seg == string(seg) {
			return n.lits[i].node
		}
	}
	return nil
}

// addChild returns the literal child for seg, adding it when missing.
func (n *node) addChild(seg string) *node {
	if c := n.child([]byte(seg)); c != nil {
		return c
	}
	c := &node{}
	n.lits = append(n.lits, litChild{seg: seg, node: c})
	if len(n.lits) > maxLinearChildren {
		if n.litMap == nil {
			n.litMap = make(map[string]*node, len(n.lits))
			for _, l := range n.lits {
				n.litMap[l.seg] = l.node
			}
		}
		n.litMap[seg] = c
	}
	return c
}

// entry holds the routes that share a host selector and a path pattern,
// ordered by their number of header conditions (most first), then as
// declared. New guarantees that no request can select two of them.
type entry struct {
	routes []compiled
}

type compiled struct {
	route   *Route
	methods methodSet // with HEAD added when GET is present
	any     bool      // no Methods: every method, known or not
	headers []Header  // canonical names
	// restParam is set for a final {name...}: it needs a '/' after the
	// segments before it and captures what follows.
	restParam bool
}

// request is one Match call's input and its result; res.Params holds the
// captures of the pattern being tried.
type request struct {
	path   []byte
	method methodSet
	hdr    Headers
	res    Result
}

// decide selects the route of e for the request, or answers 405 with the
// methods of e's routes that match the request but refuse its method. It
// returns false when no route of e matches the request's headers (and, at
// the end of the path, its slash), so a less specific pattern is tried.
// off is the position of the catch-all's slash (len(path) at the end).
func (e *entry) decide(rq *request, off int) bool {
	var allow methodSet
	matched := false
	for i := range e.routes {
		c := &e.routes[i]
		if c.restParam && off >= len(rq.path) {
			continue
		}
		if !headersMatch(c.headers, rq.hdr) {
			continue
		}
		matched = true
		if c.any || c.methods&rq.method != 0 {
			rq.res.Route = c.route
			if c.restParam {
				rq.res.Params.push(off+1, len(rq.path))
			}
			return true
		}
		allow |= c.methods
	}
	if !matched {
		return false
	}
	// Every route that refuses a method lists methods, so allow is never
	// empty.
	rq.res = Result{Status: 405, Allow: allowValues[allow]}
	return true
}

// New validates routes and compiles them into a Table. It reports every
// problem it finds, each as a *RouteError, joined with errors.Join: a nil
// route, a route without exactly one of Path and PathPrefix, a path that does
// not start with "/", is not in normal form, is written percent-encoded or
// holds a malformed parameter, an invalid host, an invalid, unknown,
// lower-case or repeated method, an invalid header condition, a rewrite
// template that is malformed or names a parameter Path does not declare, a
// name used twice, and two routes that are equally specific for some
// request: the same host, the same path pattern (parameter names aside; a
// final {name...} is the same as the path_prefix of the segments before it,
// and a prefix is the same with or without its trailing slash), methods
// that overlap, the same number of header conditions and conditions one
// request can satisfy together.
func New(routes []*Route) (*Table, error) {
	t := &Table{
		routes:    append([]*Route(nil), routes...),
		hosts:     make(map[string]*group),
		wildcards: make(map[string]*group),
		rewrites:  make(map[*Route]*Rewrite),
	}
	var errs []error
	report := func(i, other int, field, format string, args ...any) {
		errs = append(errs, &RouteError{Index: i, Field: field, Msg: fmt.Sprintf(format, args...), Other: other})
	}
	names := make(map[string]int)
	type slot struct {
		index   int
		field   string
		methods methodSet
		headers []Header
	}
	seen := make(map[string][]slot)
	for i, r := range routes {
		if r == nil {
			report(i, -1, "", "route is nil")
			continue
		}
		if r.Name != "" {
			if j, ok := names[r.Name]; ok {
				report(i, j, "name", "duplicate route name %q, also used by routes[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
		ok := true
		host, wildcard, msg := parseHost(r.Host)
		if msg != "" {
			report(i, -1, "match.host", "%s", msg)
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
				report(i, -1, "match.methods["+strconv.Itoa(j)+"]", "%s", msg)
				ok = false
			}
			methods = methods.withHead()
		}
		var headers []Header
		for _, h := range r.Headers {
			canon, msg := checkHeader(h)
			if msg == "" {
				for _, prev := range headers {
					if prev.Name == canon {
						msg = fmt.Sprintf("header %s is given twice (names are case-insensitive)", canon)
					}
				}
			}
			if msg != "" {
				report(i, -1, "match.headers."+h.Name, "%s", msg)
				ok = false
				continue
			}
			headers = append(headers, Header{Name: canon, Value: h.Value})
		}
		var field, path string
		switch {
		case r.Path == "" && r.PathPrefix == "":
			report(i, -1, "match", "one of path or path_prefix is required")
			continue
		case r.Path != "" && r.PathPrefix != "":
			report(i, -1, "match", "path and path_prefix are mutually exclusive")
			continue
		case r.Path != "":
			field, path = "match.path", r.Path
		default:
			field, path = "match.path_prefix", r.PathPrefix
		}
		if msg := checkPath(path); msg != "" {
			report(i, -1, field, "%s", msg)
			continue
		}
		pat, msg := parsePattern(path, field == "match.path_prefix")
		if msg != "" {
			report(i, -1, field, "%s", msg)
			continue
		}
		if r.Rewrite != "" {
			rw, msg := parseRewrite(r.Rewrite, &pat)
			if msg != "" {
				report(i, -1, "rewrite.path", "%s", msg)
				ok = false
			} else {
				t.rewrites[r] = rw
			}
		}
		if !ok {
			continue
		}
		hostKey := host
		if wildcard {
			hostKey = "*." + host
		}
		dupKey := hostKey + "\x00" + pat.shape()
		for _, s := range seen[dupKey] {
			overlap := s.methods & methods
			if overlap == 0 || len(s.headers) != len(headers) || !compatible(s.headers, headers) {
				continue
			}
			other := routes[s.index]
			what := field[len("match."):]
			if s.field != field || len(pat.names) > 0 {
				what = "path pattern"
			}
			if len(headers) == 0 {
				report(i, s.index, field, "route %q has the same host, %s and methods (%s) as routes[%d] (%q)",
					r.Name, what, overlap, s.index, other.Name)
			} else {
				report(i, s.index, "match.headers", "route %q has the same host, %s, methods (%s) and number of header conditions (%d) as routes[%d] (%q), and one request can satisfy both: make the headers differ in a value or add a condition to one",
					r.Name, what, overlap, len(headers), s.index, other.Name)
			}
			ok = false
			break
		}
		if !ok {
			continue
		}
		seen[dupKey] = append(seen[dupKey], slot{index: i, field: field, methods: methods, headers: headers})
		t.add(host, wildcard, &pat, path, compiled{
			route: r, methods: methods, any: anyMethod, headers: headers,
			restParam: len(pat.segs) > 0 && pat.segs[len(pat.segs)-1].kind == segRest,
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (t *Table) add(host string, wildcard bool, pat *pattern, path string, c compiled) {
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
	if pat.literal() {
		if g.exact == nil {
			g.exact = make(map[string]*entry)
		}
		e := g.exact[path]
		if e == nil {
			e = &entry{}
			g.exact[path] = e
		}
		e.insert(c)
		return
	}
	if g.root == nil {
		g.root = &node{}
	}
	if len(pat.names) > 0 {
		g.params = true
	}
	n := g.root
	for _, s := range pat.segs {
		switch s.kind {
		case segLit:
			n = n.addChild(s.lit)
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		}
	}
	slot := &n.end
	if pat.catchAll() {
		slot = &n.rest
	}
	if *slot == nil {
		*slot = &entry{}
		if pat.prefix {
			key := strings.TrimSuffix(path, "/")
			if g.prefix == nil {
				g.prefix = make(map[string]*entry)
			}
			g.prefix[key] = *slot
			g.maxPrefix = max(g.maxPrefix, len(key))
		}
	}
	(*slot).insert(c)
}

// insert adds c after the routes with as many header conditions or more.
func (e *entry) insert(c compiled) {
	i := len(e.routes)
	for i > 0 && len(e.routes[i-1].headers) < len(c.headers) {
		i--
	}
	e.routes = append(e.routes, compiled{})
	copy(e.routes[i+1:], e.routes[i:])
	e.routes[i] = c
}

// Routes returns the routes given to New, in their original order.
func (t *Table) Routes() []*Route {
	return append([]*Route(nil), t.routes...)
}

// Rewrite returns the compiled Rewrite template of r, a route given to New,
// or nil when it has none.
func (t *Table) Rewrite(r *Route) *Rewrite {
	return t.rewrites[r]
}

// maxHostLength bounds the host names Match looks up; a longer Host header
// (DNS names stop at 253 bytes) only reaches routes without a host.
const maxHostLength = 255

// Match selects the route for a request. path must be the output of
// NormalizePath; host is the Host header as received (a port and a final dot
// are ignored, letters are compared case-insensitively); method is compared
// case-sensitively (RFC 9110: "get" is not "GET"); hdr gives the request's
// headers for routes with header conditions (nil: no header condition
// holds).
//
// Candidates are taken from the exact host first, then from the wildcard
// hosts from the longest suffix to the shortest, then from the routes without
// a host. Within each, path patterns are ranked segment by segment from the
// left: a literal segment beats a {name}, which beats a catch-all (a
// path_prefix or a final {name...}), and a path that ends beats a catch-all
// that would match the empty rest. So an exact path beats everything, and a
// longer prefix beats a shorter one. At one pattern, routes with more header
// conditions come first, and a route whose header conditions do not hold is
// not a candidate at all.
//
// The most specific pattern with a candidate decides: the candidate there
// that accepts the method is selected, and when none does the result is a
// 405 whose Allow lists the methods of the candidates at that pattern. A less
// specific pattern is never tried for a method the more specific one
// refuses. When no route matches the result is a 404. Match does not
// allocate.
func (t *Table) Match(method, host, path []byte, hdr Headers) Result {
	rq := request{path: path, method: methodBit(method), hdr: hdr}
	if len(path) > maxMatchLength {
		return Result{Status: 404}
	}
	if len(t.hosts) > 0 || len(t.wildcards) > 0 {
		var buf [maxHostLength]byte
		if h := canonicalHost(&buf, host); len(h) > 0 {
			if g := t.hosts[string(h)]; g != nil {
				if g.match(&rq) {
					return rq.res
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
						if g.match(&rq) {
							return rq.res
						}
					}
				}
			}
		}
	}
	if t.anyHost != nil {
		if t.anyHost.match(&rq) {
			return rq.res
		}
	}
	return Result{Status: 404}
}

// maxMatchLength is the longest path Match considers: parameter offsets are
// 16-bit. NormalizePath never returns a longer one.
const maxMatchLength = 1<<16 - 1

// match decides the request on the most specific pattern of g with a
// candidate for it, or returns false when there is none.
func (g *group) match(rq *request) bool {
	if g.exact != nil {
		if e := g.exact[string(rq.path)]; e != nil && e.decide(rq, len(rq.path)) {
			return true
		}
	}
	if g.root == nil || len(rq.path) == 0 {
		return false
	}
	if g.params {
		return g.root.match(rq, 0)
	}
	// Without parameters only prefixes are left, and the longest that
	// matches is the most specific.
	q := rq.path
	if n := len(q); q[n-1] == '/' {
		q = q[:n-1]
	}
	for {
		if len(q) <= g.maxPrefix {
			if e := g.prefix[string(q)]; e != nil && e.decide(rq, len(q)) {
				return true
			}
		}
		i := bytes.LastIndexByte(q, '/')
		if i < 0 {
			return false
		}
		q = q[:i]
	}
}

// match tries the patterns below n for the rest of the path, which starts
// at off (a '/', or the end of the path), most specific first.
func (n *node) match(rq *request, off int) bool {
	path := rq.path
	if off == len(path) {
		if n.end != nil && n.end.decide(rq, off) {
			return true
		}
	} else {
		end := off + 1
		if i := bytes.IndexByte(path[end:], '/'); i >= 0 {
			end += i
		} else {
			end = len(path)
		}
		seg := path[off+1 : end]
		if next := n.child(seg); next != nil && next.match(rq, end) {
			return true
		}
		if n.param != nil && len(seg) > 0 {
			saved := rq.res.Params.n
			rq.res.Params.push(off+1, end)
			if n.param.match(rq, end) {
				return true
			}
			rq.res.Params.n = saved
		}
	}
	return n.rest != nil && n.rest.decide(rq, off)
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
