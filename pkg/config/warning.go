package config

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// Warning is a setting that loads and works but probably does not do what
// the operator meant: an rbac entry that denies every method its rules leave
// out, a rate limit keyed on a header nobody authenticated. It is positioned
// like an Error and prints as "FILE:LINE: path.to.field: warning: message".
// Warnings never stop a file from loading: `gatewayd -check` prints them and
// still answers "configuration OK", and the gateway logs them at start and
// on every reload.
type Warning struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

// String returns the warning as "FILE:LINE: path: warning: message".
func (w *Warning) String() string {
	e := Error{File: w.File, Line: w.Line, Column: w.Column, Path: w.Path, Msg: "warning: " + w.Msg}
	return e.Error()
}

// Warnf returns a *Warning positioned at node (which may be nil).
func Warnf(file string, node *yaml.Node, path, msg string) *Warning {
	w := &Warning{File: file, Path: path, Msg: msg}
	if node != nil {
		w.Line, w.Column = node.Line, node.Column
	}
	return w
}

// Warnf returns a *Warning positioned at field's value (or at the section
// when the field was not written, or the section is bare), like Errorf.
func (s Section) Warnf(field, format string, args ...any) *Warning {
	n := s.Node
	if n != nil && field != "" {
		if v := mappingValue(n, field); v != nil {
			n = v
		}
	}
	return Warnf(s.File, n, joinPath(s.Path, field), fmt.Sprintf(format, args...))
}

// SortWarnings returns ws in file order without repeats.
func SortWarnings(ws []*Warning) []*Warning {
	out := append([]*Warning(nil), ws...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := map[string]bool{}
	uniq := out[:0]
	for _, w := range out {
		if s := w.String(); !seen[s] {
			seen[s] = true
			uniq = append(uniq, w)
		}
	}
	return uniq
}
