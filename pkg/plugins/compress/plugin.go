// Package compress is the compress plugin: it compresses response bodies
// with brotli or gzip, chosen by the request's Accept-Encoding (q-values
// honoured), for the media types it is given, above a minimum size. It
// never compresses a response that is already encoded, marked
// Cache-Control: no-transform, partial (206 or Content-Range), bodiless
// (HEAD, 1xx, 204, 304) or streamed, and it marks every response of a
// compressible type Vary: Accept-Encoding.
//
// Compression runs on the whole body the gateway buffered, with writers
// and buffers from pools, so the steady state does not allocate. Brotli is
// github.com/molecule-man/go-brrr (the encoder fasthttp itself uses), gzip
// github.com/klauspost/compress/gzip.
package compress

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "compress"

// Defaults of the settings.
const (
	// DefaultMinSize is the smallest body compressed: below about 1 KiB
	// the encoding overhead and the CPU cost outweigh the bytes saved.
	DefaultMinSize = 1 << 10
	// DefaultLevel is the compression level.
	DefaultLevel = "default"
)

// DefaultTypes are the media types compressed when types is not set: text
// formats and the JSON, XML and JavaScript types APIs and web apps serve.
var DefaultTypes = []string{
	"application/json", "application/problem+json", "application/ld+json", "application/x-ndjson",
	"application/javascript", "application/xml", "application/xhtml+xml", "application/manifest+json",
	"image/svg+xml",
	"text/html", "text/plain", "text/css", "text/csv", "text/xml", "text/javascript", "text/markdown",
}

// DefaultEncodings are the encodings offered, in the order that breaks a
// tie between equal q-values: brotli compresses text better than gzip at
// a similar speed.
var DefaultEncodings = []string{"br", "gzip"}

// Settings are the plugin's YAML settings.
type Settings struct {
	Types     []string    `yaml:"types"`
	MinSize   config.Size `yaml:"min_size"`
	Level     string      `yaml:"level"`
	Encodings []string    `yaml:"encodings"`
	Meta      config.Meta `yaml:"-"`
}

// levels maps the level setting to gzip (1-9) and brotli (0-11) levels.
// Brotli stops at 9: levels 10 and 11 are for static assets, an order of
// magnitude slower, and run worker goroutines.
var levels = map[string]struct{ gzip, brotli int }{
	"fastest": {gzip: 1, brotli: 1},
	"default": {gzip: 6, brotli: 4},
	"best":    {gzip: 9, brotli: 9},
}

// Factory builds compress plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// coding is a content coding the plugin produces.
type coding uint8

const (
	none coding = iota
	brotli
	gzip
)

// Plugin is a compiled compress plugin instance.
type Plugin struct {
	// exact are "type/subtype" and prefixes "type/" (from "type/*"), lower
	// case; any is "*/*".
	exact    [][]byte
	prefixes [][]byte
	any      bool
	minSize  int
	// offered are the codings in tie-break order.
	offered     []coding
	gzipLevel   int
	brotliLevel int
}

var (
	_ plugins.Plugin       = (*Plugin)(nil)
	_ plugins.ResponseHook = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	s := Settings{Types: DefaultTypes, MinSize: DefaultMinSize, Level: DefaultLevel, Encodings: DefaultEncodings}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	var errs []error
	at := func(field string, i int, format string, args ...any) {
		n := s.Meta.Pos(field)
		path := config.JoinPath(sec.Path, field)
		if i >= 0 {
			path = config.IndexPath(path, i)
			if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
				n = n.Content[i]
			}
		}
		errs = append(errs, config.Errorf(sec.File, n, path, fmt.Sprintf(format, args...)))
	}
	p := &Plugin{minSize: int(s.MinSize)}
	if len(s.Types) == 0 {
		at("types", -1, "at least one media type is required (e.g. [application/json, text/*])")
	}
	for i, t := range s.Types {
		t = strings.ToLower(strings.TrimSpace(t))
		typ, sub, ok := strings.Cut(t, "/")
		switch {
		case t == "*/*":
			p.any = true
		case !ok || !config.IsToken(typ) || typ == "*" || (sub != "*" && !config.IsToken(sub)):
			at("types", i, "expected a media type such as application/json, or type/* (parameters such as ;charset are not part of it), got %q", s.Types[i])
		case sub == "*":
			p.prefixes = append(p.prefixes, []byte(typ+"/"))
		default:
			p.exact = append(p.exact, []byte(t))
		}
	}
	lv, ok := levels[s.Level]
	if !ok {
		hint := ""
		if c := config.Closest(s.Level, []string{"fastest", "default", "best"}); c != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", c)
		}
		at("level", -1, "expected fastest, default or best, got %q%s", s.Level, hint)
	}
	p.gzipLevel, p.brotliLevel = lv.gzip, lv.brotli
	if len(s.Encodings) == 0 {
		at("encodings", -1, "at least one encoding is required: br, gzip")
	}
	for i, e := range s.Encodings {
		var c coding
		switch e {
		case "br":
			c = brotli
		case "gzip":
			c = gzip
		default:
			hint := ""
			if h := config.Closest(strings.ToLower(e), []string{"br", "gzip"}); h != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", h)
			}
			at("encodings", i, "unknown encoding %q%s: expected br or gzip", e, hint)
			continue
		}
		for _, o := range p.offered {
			if o == c {
				at("encodings", i, "%s is listed twice", e)
			}
		}
		p.offered = append(p.offered, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }
