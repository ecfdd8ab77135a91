package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Meta records where a mapping was in the file. A struct field of type Meta
// tagged `yaml:"-"` is filled by DecodeStrict, so later validation can point
// at the exact line of any key.
type Meta struct {
	File   string
	Node   *yaml.Node
	values map[string]*yaml.Node
}

// Pos returns the value node of key, or the mapping node itself when the key
// was not written.
func (m Meta) Pos(key string) *yaml.Node {
	if n, ok := m.values[key]; ok {
		return n
	}
	return m.Node
}

// Has reports whether key was written in the file.
func (m Meta) Has(key string) bool {
	_, ok := m.values[key]
	return ok
}

// Section is one plugin's settings as the plugin factory receives them: the
// YAML mapping (nil for a bare plugin name), the file and the dotted path.
type Section struct {
	File string
	Path string
	Node *yaml.Node
}

// Decode strictly decodes the section into dst (a pointer to a struct whose
// defaults are already set). A nil section leaves dst unchanged.
func (s Section) Decode(dst any) error {
	if s.Node == nil {
		return nil
	}
	return DecodeStrict(s.File, s.Node, s.Path, dst)
}

// Errorf returns an *Error positioned at field's value (or at the section
// when the field was not written, or the section is bare).
func (s Section) Errorf(field, format string, args ...any) error {
	n := s.Node
	if n != nil && field != "" {
		if v := mappingValue(n, field); v != nil {
			n = v
		}
	}
	return Errorf(s.File, n, joinPath(s.Path, field), fmt.Sprintf(format, args...))
}

// DecodeStrict decodes node into dst, which must be a non-nil pointer. Unlike
// yaml.v3's Node.Decode it rejects unknown keys at every depth (go-yaml issue
// #460), rejects duplicate keys, and reports every mistake as an *Error with
// the line of the offending key or value. All errors are returned joined.
func DecodeStrict(file string, node *yaml.Node, path string, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("config: DecodeStrict needs a non-nil pointer")
	}
	d := decoder{file: file}
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	d.value(node, v.Elem(), path)
	return d.errs.err()
}

type decoder struct {
	file string
	errs errList
	// aliases counts alias dereferences on the current path, so a
	// recursive anchor cannot loop forever.
	aliases int
	// expanded counts all alias dereferences, bounding "billion laughs"
	// documents.
	expanded int
}

// maxAliasExpansions bounds alias dereferences in one document.
const maxAliasExpansions = 10000

// maxAliasDepth bounds nested alias dereferences.
const maxAliasDepth = 32

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	metaType        = reflect.TypeFor[Meta]()
	targetType      = reflect.TypeFor[Target]()
)

// target decodes an upstream target: a URL string, weight 1, or a mapping
// { url, weight } whose weight defaults to 1.
func (d *decoder) target(n *yaml.Node, t *Target, path string) {
	t.Weight = 1
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		t.URL = n.Value
		t.Meta = Meta{File: d.file, Node: n}
	case n.Kind == yaml.MappingNode:
		d.structValue(n, reflect.ValueOf(t).Elem(), path)
		if !t.Meta.Has("url") {
			d.fail(n, joinPath(path, "url"), "missing url: a target is a URL or { url: URL, weight: N }")
		}
	default:
		d.fail(n, path, "expected a URL or a mapping { url, weight }, got %s", kindName(n))
	}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.add(Errorf(d.file, n, path, fmt.Sprintf(format, args...)))
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		d.expanded++
		if d.expanded > maxAliasExpansions {
			if d.expanded == maxAliasExpansions+1 {
				d.fail(n, path, "too many alias expansions (more than 10000)")
			}
			return
		}
		if n.Alias == nil || d.aliases >= maxAliasDepth {
			d.fail(n, path, "alias nests too deeply (is an anchor used inside itself?)")
			return
		}
		d.aliases++
		defer func() { d.aliases-- }()
		d.value(n.Alias, v, path)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.Type().Elem() == nodeType {
			v.Set(reflect.ValueOf(n))
			return
		}
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
		return
	}
	if v.Type() == targetType {
		d.target(n, v.Addr().Interface().(*Target), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a single value, got %s", kindName(n))
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%s", err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structValue(n, v, path)
	case reflect.Map:
		d.mapValue(n, v, path)
	case reflect.Slice:
		d.sliceValue(n, v, path)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "%s", cleanYAMLError(err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.scalar(n, v, path)
	}
}

// pairs returns the key and value nodes of mapping n, alternating as in
// n.Content, with YAML merge keys resolved ("<<: *defaults", "<<: [*a,
// *b]"): each merged mapping's pairs stand where its merge key is, as if
// written there; a key written in n wins over a merged one, and an earlier
// mapping of a list over a later one. Merged pairs keep their own nodes,
// so an error in one points at its line in the anchor.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []*yaml.Node {
	merges := false
	explicit := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; isMergeKey(k) {
			merges = true
		} else {
			explicit[k.Value] = true
		}
	}
	if !merges {
		return n.Content
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	merged := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			out = append(out, k, val)
			continue
		}
		srcs := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			srcs = val.Content
		}
		for _, src := range srcs {
			m := d.deref(src, path)
			if m == nil {
				continue
			}
			if m.Kind != yaml.MappingNode {
				d.fail(src, joinPath(path, "<<"), "merges mappings only (<<: *anchor or <<: [*a, *b]), got %s", kindName(m))
				continue
			}
			if depth >= maxAliasDepth {
				d.fail(src, path, "alias nests too deeply (is an anchor used inside itself?)")
				continue
			}
			sub := d.pairs(m, path, depth+1)
			for j := 0; j+1 < len(sub); j += 2 {
				key := sub[j].Value
				if explicit[key] || merged[key] {
					continue
				}
				merged[key] = true
				out = append(out, sub[j], sub[j+1])
			}
		}
	}
	return out
}

// deref follows n while it is an alias, counting the expansions as value
// does; nil (and an error) when it cannot.
func (d *decoder) deref(n *yaml.Node, path string) *yaml.Node {
	for depth := 0; n.Kind == yaml.AliasNode; depth++ {
		d.expanded++
		if d.expanded > maxAliasExpansions {
			if d.expanded == maxAliasExpansions+1 {
				d.fail(n, path, "too many alias expansions (more than 10000)")
			}
			return nil
		}
		if n.Alias == nil || depth >= maxAliasDepth {
			d.fail(n, path, "alias nests too deeply (is an anchor used inside itself?)")
			return nil
		}
		n = n.Alias
	}
	return n
}

// isMergeKey reports whether k is YAML's merge key, an unquoted <<.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge"
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of settings, got %s", kindName(n))
		return
	}
	fields, names := structFields(v.Type())
	var meta *Meta
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Type == metaType {
			meta = v.Field(i).Addr().Interface().(*Meta)
			*meta = Meta{File: d.file, Node: n, values: make(map[string]*yaml.Node, len(n.Content)/2)}
		}
	}
	seen := make(map[string]bool, len(n.Content)/2)
	content := d.pairs(n, path, 0)
	for i := 0; i+1 < len(content); i += 2 {
		k, val := content[i], content[i+1]
		key := k.Value
		fpath := joinPath(path, key)
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain names")
			continue
		}
		if seen[key] {
			d.fail(k, fpath, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.fail(k, fpath, "unknown field %q%s", key, suggest(key, names, "fields"))
			continue
		}
		if meta != nil {
			meta.values[key] = val
		}
		d.value(val, v.Field(idx), fpath)
	}
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("config: map keys must be strings")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	seen := make(map[string]bool, len(n.Content)/2)
	content := d.pairs(n, path, 0)
	for i := 0; i+1 < len(content); i += 2 {
		k, val := content[i], content[i+1]
		fpath := joinPath(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			d.fail(k, path, "keys must be non-empty plain names")
			continue
		}
		if seen[k.Value] {
			d.fail(k, fpath, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		ev := reflect.New(v.Type().Elem()).Elem()
		d.value(val, ev, fpath)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
	}
}

func (d *decoder) sliceValue(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), IndexPath(path, i))
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", typeName(v.Type()), kindName(n))
		return
	}
	s := n.Value
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!null" {
			d.fail(n, path, "expected a string, got an empty value")
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil || n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "expected an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "expected a non-negative integer, got %q", s)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			d.fail(n, path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		panic("config: unsupported field type " + v.Type().String())
	}
}

// structFields maps yaml key names to field indexes.
func structFields(t reflect.Type) (map[string]int, []string) {
	m := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	return m, names
}

// FieldNames returns the YAML keys a struct accepts, sorted.
func FieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	_, names := structFields(t)
	return names
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "an empty value"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	}
	return "a single value"
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n  ")
	return s
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// suggest returns ` (did you mean "x"?)` when a known name is close to got,
// else the list of known names when it is short.
func suggest(got string, known []string, what string) string {
	if s := Closest(got, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) > 0 && len(known) <= 12 {
		return " (known " + what + ": " + strings.Join(known, ", ") + ")"
	}
	return ""
}

// Closest returns the name in known nearest to got by edit distance, when it
// is close enough to be a likely typo, else "".
func Closest(got string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if dist := editDistance(strings.ToLower(got), strings.ToLower(k)); dist < bestD {
			best, bestD = k, dist
		}
	}
	limit := 2
	if len(got) <= 4 {
		limit = 1
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
