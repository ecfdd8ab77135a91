package router

import (
	"fmt"
	"strings"
)

// MaxParams is the most parameters one match.path may declare.
const MaxParams = 8

// Params holds the parameters Table.Match captured, as offsets into the
// path it was given: Value(path, i) is the i-th parameter of the route's
// match.path, in the order they are written. A Params is a plain value with
// no pointers, so capturing never allocates.
type Params struct {
	n    uint8
	span [MaxParams][2]uint16
}

// Len returns the number of captured parameters.
func (p *Params) Len() int { return int(p.n) }

// Value returns the i-th captured parameter as a sub-slice of path, which
// must be the path given to Match. A {name} value is one non-empty segment
// (never holding '/'); a {name...} value is the rest of the path after its
// slash, possibly empty.
func (p *Params) Value(path []byte, i int) []byte {
	s := p.span[i]
	return path[s[0]:s[1]]
}

func (p *Params) push(start, end int) {
	p.span[p.n] = [2]uint16{uint16(start), uint16(end)}
	p.n++
}

type segKind uint8

const (
	segLit segKind = iota
	segParam
	segRest
)

// patSeg is one segment of a route path: a literal, {name} or {name...}.
type patSeg struct {
	kind segKind
	lit  string // segLit: the segment's bytes
	name string // segParam, segRest: the parameter name
}

// pattern is a parsed match.path or match.path_prefix.
type pattern struct {
	// segs are the segments after the leading '/'. A path_prefix keeps its
	// segments without the trailing empty one and gets prefix set; a
	// {name...} is the last segment.
	segs   []patSeg
	prefix bool
	// names are the parameter names in order.
	names []string
}

// literal reports whether the pattern is an exact path without parameters.
func (p *pattern) literal() bool { return !p.prefix && len(p.names) == 0 }

// catchAll reports whether the pattern ends by matching the rest of the path
// (a path_prefix or a final {name...}).
func (p *pattern) catchAll() bool {
	return p.prefix || len(p.segs) > 0 && p.segs[len(p.segs)-1].kind == segRest
}

// shape identifies the requests a pattern matches and how specifically:
// literal segments by their bytes, parameters without their names, and a
// catch-all (path_prefix or {name...}) as one mark after the segments before
// it. Two patterns with the same shape are equally specific for every
// request both match; patterns of different shapes never are.
func (p *pattern) shape() string {
	var b strings.Builder
	for _, s := range p.segs {
		switch s.kind {
		case segLit:
			b.WriteByte('/')
			b.WriteString(s.lit)
		case segParam:
			b.WriteString("/\x00")
		case segRest:
			b.WriteString("\x01")
			return b.String()
		}
	}
	if p.prefix {
		b.WriteString("\x01")
	} else {
		b.WriteString("\x02")
	}
	return b.String()
}

// parsePattern parses a route's path (prefix false) or path_prefix, which
// checkPath accepted, or returns a message saying what is wrong with it.
func parsePattern(path string, prefix bool) (pattern, string) {
	p := pattern{prefix: prefix}
	if prefix {
		if strings.ContainsAny(path, "{}") {
			return p, fmt.Sprintf("parameters are only allowed in match.path (a final {name...} captures the rest), got %q", path)
		}
		path = strings.TrimSuffix(path, "/")
		if path == "" {
			return p, ""
		}
	}
	parts := strings.Split(path[1:], "/")
	for i, s := range parts {
		if !strings.ContainsAny(s, "{}") {
			p.segs = append(p.segs, patSeg{kind: segLit, lit: s})
			continue
		}
		name, rest, msg := parseParam(s)
		if msg != "" {
			return p, msg
		}
		if rest && i != len(parts)-1 {
			return p, fmt.Sprintf("{%s...} matches the rest of the path and must be the last segment, got %q", name, path)
		}
		for _, n := range p.names {
			if n == name {
				return p, fmt.Sprintf("parameter %q is declared twice in %q", name, path)
			}
		}
		if len(p.names) == MaxParams {
			return p, fmt.Sprintf("at most %d parameters are allowed, got more in %q", MaxParams, path)
		}
		p.names = append(p.names, name)
		kind := segParam
		if rest {
			kind = segRest
		}
		p.segs = append(p.segs, patSeg{kind: kind, name: name})
	}
	return p, ""
}

// parseParam parses one segment holding a parameter: "{name}" or
// "{name...}", where name is an identifier.
func parseParam(s string) (name string, rest bool, msg string) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1 {
		return "", false, fmt.Sprintf("a parameter is a whole segment such as {id} or {path...}, got %q", s)
	}
	name = s[1 : len(s)-1]
	name, rest = strings.CutSuffix(name, "...")
	if !isIdent(name) {
		return "", false, fmt.Sprintf("parameter name %q must be an identifier (a letter or '_', then letters, digits or '_')", name)
	}
	return name, rest, ""
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Rewrite is a compiled rewrite.path template: the upstream path built from
// literal text and the parameters a route captured.
type Rewrite struct {
	parts []rwPart
	src   string
}

// rwPart is literal escaped text (param < 0) or a parameter's index.
type rwPart struct {
	lit   []byte
	param int
}

// String returns the template as written.
func (rw *Rewrite) String() string { return rw.src }

// Append appends the upstream path to dst and returns the extended buffer:
// the template with every parameter replaced by the value params captured
// from path (the normalised path Match was given), escaped as
// AppendEscapedPath does. The result is in normal form: template literals
// are normalised, a {name} value is one segment that is neither "." nor
// "..", and a {name...} value is a normalised rest of the path. Append
// does not allocate when dst has room.
func (rw *Rewrite) Append(dst, path []byte, params *Params) []byte {
	for i := range rw.parts {
		pt := &rw.parts[i]
		if pt.param < 0 {
			dst = append(dst, pt.lit...)
			continue
		}
		dst = AppendEscapedPath(dst, params.Value(path, pt.param))
	}
	return dst
}

// parseRewrite compiles a rewrite template against the route's pattern, or
// returns a message saying what is wrong with it.
func parseRewrite(tmpl string, pat *pattern) (*Rewrite, string) {
	if pat.prefix {
		var b strings.Builder
		for _, s := range pat.segs {
			b.WriteString("/" + s.lit)
		}
		return nil, fmt.Sprintf("needs match.path: a path_prefix route captures nothing to rewrite with; write match.path: %q and use {rest...} in the template", b.String()+"/{rest...}")
	}
	if !strings.HasPrefix(tmpl, "/") {
		return nil, fmt.Sprintf("must start with \"/\", got %q", tmpl)
	}
	if len(tmpl) > MaxPathLength {
		return nil, fmt.Sprintf("must be at most %d bytes long", MaxPathLength)
	}
	for i := 0; i < len(tmpl); i++ {
		if c := tmpl[i]; c < 0x20 || c == 0x7f {
			return nil, fmt.Sprintf("must not contain control characters, got %q", tmpl)
		}
		if tmpl[i] == '%' && i+2 < len(tmpl) {
			_, ok1 := unhex(tmpl[i+1])
			_, ok2 := unhex(tmpl[i+2])
			if ok1 && ok2 {
				return nil, fmt.Sprintf("is written decoded, like match.path, and escaped when sent: write it without percent escapes, got %q", tmpl)
			}
		}
	}
	rw := &Rewrite{src: tmpl}
	var lit []byte
	parts := strings.Split(tmpl[1:], "/")
	for i, s := range parts {
		lit = append(lit, '/')
		if !strings.ContainsAny(s, "{}") {
			if s == "." || s == ".." || s == "" && i < len(parts)-1 {
				return nil, fmt.Sprintf("must be normalised (no empty, \".\" or \"..\" segments), got %q", tmpl)
			}
			lit = AppendEscapedPath(lit, []byte(s))
			continue
		}
		name, rest, msg := parseParam(s)
		if msg != "" {
			return nil, msg
		}
		idx := -1
		for j, n := range pat.names {
			if n == name {
				idx = j
			}
		}
		if idx < 0 {
			return nil, fmt.Sprintf("unknown parameter {%s}%s", name, suggestParam(name, pat.names))
		}
		switch declared := pat.segs[segIndex(pat, idx)].kind; {
		case rest && declared != segRest:
			return nil, fmt.Sprintf("{%s} is a one-segment parameter in match.path: write {%s}, not {%s...}", name, name, name)
		case !rest && declared == segRest:
			return nil, fmt.Sprintf("{%s...} captures the rest of the path: write {%s...}, not {%s}", name, name, name)
		case rest && i != len(parts)-1:
			return nil, fmt.Sprintf("{%s...} must be the last segment of the template, got %q", name, tmpl)
		}
		rw.parts = append(rw.parts, rwPart{lit: lit, param: -1}, rwPart{param: idx})
		lit = nil
	}
	if len(lit) > 0 {
		rw.parts = append(rw.parts, rwPart{lit: lit, param: -1})
	}
	return rw, ""
}

// segIndex returns the index in pat.segs of the i-th parameter.
func segIndex(pat *pattern, i int) int {
	for j, s := range pat.segs {
		if s.kind != segLit {
			if i == 0 {
				return j
			}
			i--
		}
	}
	return -1
}

// suggestParam returns " (did you mean {x}?)" for the closest declared
// name, else the list of declared names.
func suggestParam(got string, names []string) string {
	if len(names) == 0 {
		return ": match.path declares no parameters"
	}
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := editDistance(strings.ToLower(got), strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	limit := 2
	if len(got) <= 4 {
		limit = 1
	}
	if bestD <= limit {
		return fmt.Sprintf(" (did you mean {%s}?)", best)
	}
	return " (match.path declares {" + strings.Join(names, "}, {") + "})"
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours ("paht" is one
// edit from "path").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
