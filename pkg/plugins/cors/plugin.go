// Package cors is the cors plugin: it answers CORS preflight requests at the
// gateway and adds the CORS response headers to every response of an
// allowed origin, gateway error responses included.
package cors

import (
	"errors"
	"fmt"
	"github.com/valyala/fasthttp"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "cors"

// DefaultMethods are the allowed methods when allowed_methods is not set.
var DefaultMethods = []string{"GET", "HEAD", "POST"}

// Settings are the cors plugin's YAML settings.
type Settings struct {
	AllowedOrigins   []string        `yaml:"allowed_origins"`
	AllowedMethods   []string        `yaml:"allowed_methods"`
	AllowedHeaders   []string        `yaml:"allowed_headers"`
	ExposedHeaders   []string        `yaml:"exposed_headers"`
	AllowCredentials bool            `yaml:"allow_credentials"`
	MaxAge           config.Duration `yaml:"max_age"`
	Meta             config.Meta     `yaml:"-"`
}

// Factory builds cors plugins. The zero value is ready to use.
type Factory struct{}

var (
	_ plugins.Factory        = Factory{}
	_ plugins.MethodAnswerer = (*Plugin)(nil)
)

// AnsweredMethods implements plugins.MethodAnswerer: preflights (OPTIONS)
// are answered here even on a route that lists only other methods.
func (p *Plugin) AnsweredMethods() []string { return []string{fasthttp.MethodOptions} }

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// wildcard is an origin pattern "scheme://*.domain[:port]": prefix is
// "scheme://", suffix ".domain[:port]".
type wildcard struct{ prefix, suffix string }

// Plugin is a compiled cors plugin instance.
type Plugin struct {
	anyOrigin   bool
	origins     []string // lower-case, exact
	wildcards   []wildcard
	methods     []string
	headers     []string // lower-case
	anyHeader   bool
	credentials bool

	allowMethods []byte
	allowHeaders []byte // nil when anyHeader or none
	expose       []byte
	maxAge       []byte
}

var (
	_ plugins.Plugin       = (*Plugin)(nil)
	_ plugins.ResponseHook = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	s := Settings{AllowedMethods: DefaultMethods}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	c := compiler{sec: sec, meta: s.Meta}
	p := &Plugin{credentials: s.AllowCredentials}
	if len(s.AllowedOrigins) == 0 {
		c.errf("allowed_origins", "at least one origin is required (e.g. [https://app.example.com])")
	}
	for i, o := range s.AllowedOrigins {
		c.origin(p, i, o)
	}
	if p.anyOrigin && s.AllowCredentials {
		c.errf("allow_credentials", `cannot be true when allowed_origins has "*": browsers refuse credentials with a wildcard origin, list the origins instead`)
	}
	if len(s.AllowedMethods) == 0 {
		c.errf("allowed_methods", "at least one method is required")
	}
	for i, m := range s.AllowedMethods {
		if m == "*" {
			c.itemErr("allowed_methods", i, `"*" is not accepted: list the methods`)
			continue
		}
		if !config.IsToken(m) {
			c.itemErr("allowed_methods", i, "%q is not an HTTP method", m)
			continue
		}
		p.methods = appendUnique(p.methods, strings.ToUpper(m))
	}
	for i, h := range s.AllowedHeaders {
		switch {
		case h == "*":
			p.anyHeader = true
		case !config.IsToken(h):
			c.itemErr("allowed_headers", i, "%q is not a header name", h)
		default:
			p.headers = appendUnique(p.headers, strings.ToLower(h))
		}
	}
	var expose []string
	for i, h := range s.ExposedHeaders {
		switch {
		case h == "*" && s.AllowCredentials:
			c.itemErr("exposed_headers", i, `"*" is taken literally by browsers when allow_credentials is true: list the headers`)
		case h != "*" && !config.IsToken(h):
			c.itemErr("exposed_headers", i, "%q is not a header name", h)
		default:
			expose = appendUnique(expose, h)
		}
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	p.allowMethods = []byte(strings.Join(p.methods, ", "))
	if !p.anyHeader && len(p.headers) > 0 {
		p.allowHeaders = []byte(strings.Join(p.headers, ", "))
	}
	if len(expose) > 0 {
		p.expose = []byte(strings.Join(expose, ", "))
	}
	if secs := int64(s.MaxAge.D() / time.Second); secs > 0 {
		p.maxAge = strconv.AppendInt(nil, secs, 10)
	}
	return p, nil
}

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }

type compiler struct {
	sec  config.Section
	meta config.Meta
	errs []error
}

func (c *compiler) errf(field, format string, args ...any) {
	c.errs = append(c.errs, c.sec.Errorf(field, format, args...))
}

func (c *compiler) itemErr(field string, i int, format string, args ...any) {
	n := c.meta.Pos(field)
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		n = n.Content[i]
	}
	c.errs = append(c.errs, config.Errorf(c.sec.File, n, config.JoinPath(c.sec.Path, config.IndexPath(field, i)), fmt.Sprintf(format, args...)))
}

const originForm = "expected scheme://host[:port], optionally scheme://*.domain[:port]"

// origin checks one allowed_origins entry and adds it to p.
func (c *compiler) origin(p *Plugin, i int, o string) {
	if o == "*" {
		p.anyOrigin = true
		return
	}
	if strings.EqualFold(o, "null") {
		c.itemErr("allowed_origins", i, `"null" is the origin of sandboxed and local documents, which anyone can create: it cannot be allowed`)
		return
	}
	lo := strings.ToLower(o)
	scheme, rest, ok := strings.Cut(lo, "://")
	if !ok || !validScheme(scheme) {
		c.itemErr("allowed_origins", i, "%q is not an origin (%s)", o, originForm)
		return
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@") {
		c.itemErr("allowed_origins", i, "%q is not an origin: no user, path, query or trailing slash (%s)", o, originForm)
		return
	}
	if strings.Contains(rest, "*") {
		host, ok := strings.CutPrefix(rest, "*.")
		if !ok || strings.Contains(host, "*") {
			c.itemErr("allowed_origins", i, "%q: a wildcard must be the first label of the host (%s)", o, originForm)
			return
		}
		if !validHostPort(host) {
			c.itemErr("allowed_origins", i, "%q is not an origin (%s)", o, originForm)
			return
		}
		p.wildcards = append(p.wildcards, wildcard{prefix: scheme + "://", suffix: "." + host})
		return
	}
	if !validHostPort(rest) {
		c.itemErr("allowed_origins", i, "%q is not an origin (%s)", o, originForm)
		return
	}
	p.origins = appendUnique(p.origins, lo)
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validHostPort accepts a lower-case host name, IPv4 or [IPv6] address,
// with an optional numeric port.
func validHostPort(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if strings.Trim(host[1:end], "0123456789abcdef:.") != "" || end == 1 {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
		if !hostLabels(host) {
			return false
		}
	} else if !hostLabels(host) {
		return false
	}
	if port != "" {
		digits, ok := strings.CutPrefix(port, ":")
		if !ok || digits == "" || len(digits) > 5 || strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}

func hostLabels(h string) bool {
	if h == "" {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return true
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
