package config

import (
	"errors"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one configuration mistake, positioned in the file it came from.
// It prints as "FILE:LINE: path.to.field: message".
type Error struct {
	File   string
	Line   int
	Column int
	Path   string
	Msg    string
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns an *Error positioned at node (which may be nil).
func Errorf(file string, node *yaml.Node, path, msg string) *Error {
	e := &Error{File: file, Path: path, Msg: msg}
	if node != nil {
		e.Line, e.Column = node.Line, node.Column
	}
	return e
}

// Errors flattens err (a single error, an *Error, or an errors.Join tree)
// into its leaves, in order.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// errList collects errors in file order.
type errList struct{ errs []error }

func (l *errList) add(err error) {
	if err == nil {
		return
	}
	l.errs = append(l.errs, Errors(err)...)
}

func (l *errList) err() error { return errors.Join(l.errs...) }

// joinPath appends a field name or an index to a dotted path.
func joinPath(base, field string) string {
	switch {
	case field == "":
		return base
	case base == "":
		return field
	case strings.HasPrefix(field, "["):
		return base + field
	default:
		return base + "." + field
	}
}

// JoinPath returns the dotted path of field under base ("routes[2]" +
// "plugins" = "routes[2].plugins"; an index field starts with "[").
func JoinPath(base, field string) string { return joinPath(base, field) }

// IndexPath returns base[i].
func IndexPath(base string, i int) string { return base + "[" + strconv.Itoa(i) + "]" }

// Merge returns primary's errors plus those of secondary that do not repeat
// a field primary already reports on: a secondary error is dropped when its
// path equals, contains or lies under the path of a primary error. Used to
// add build-time (plugin) errors to validation errors without saying the
// same thing twice.
func Merge(primary, secondary error) error {
	ps := Errors(primary)
	out := append([]error(nil), ps...)
	for _, e := range Errors(secondary) {
		se, ok := e.(*Error)
		dup := false
		for _, p := range ps {
			pe, ok2 := p.(*Error)
			if !ok || !ok2 {
				continue
			}
			if related(pe.Path, se.Path) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return sortErrors(errors.Join(out...))
}

func related(a, b string) bool {
	under := func(x, parent string) bool {
		return strings.HasPrefix(x, parent+".") || strings.HasPrefix(x, parent+"[")
	}
	return a == b || under(a, b) || under(b, a)
}
