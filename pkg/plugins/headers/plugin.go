// Package headers is the headers plugin: it sets, adds and removes request
// headers before the request is forwarded, and response headers before the
// response goes to the client (the upstream's response or the gateway's
// own). It can never write an identity header: X-User-* and the names the
// identity plugins of the whole file claim (jwt forward_claims, api-key
// forward_header, tls.forward_client_cert) are refused when the gateway
// checks the built configuration (plugins.HeaderWriter).
package headers

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "headers"

// Settings are the plugin's YAML settings.
type Settings struct {
	Request  *Edits      `yaml:"request"`
	Response *Edits      `yaml:"response"`
	Meta     config.Meta `yaml:"-"`
}

// Edits are the header edits of one direction. They apply in the order
// remove, set, add.
type Edits struct {
	// Set replaces every value of the header with the one given.
	Set map[string]string `yaml:"set"`
	// Add appends a value, keeping those already there.
	Add map[string]string `yaml:"add"`
	// Remove deletes the headers (names compared case-insensitively).
	Remove []string    `yaml:"remove"`
	Meta   config.Meta `yaml:"-"`
}

// Factory builds headers plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// header is one compiled edit: the canonical name (fasthttp's normalised
// form), the value, and where the name was written.
type header struct {
	name  []byte
	value []byte
	raw   string
	node  *yaml.Node
	path  string
}

// edits is one direction's compiled edits.
type edits struct {
	remove, set, add []header
}

func (e *edits) empty() bool { return len(e.remove)+len(e.set)+len(e.add) == 0 }

// Plugin is a compiled headers plugin instance.
type Plugin struct {
	file     string
	request  edits
	response edits
}

var (
	_ plugins.Plugin       = (*Plugin)(nil)
	_ plugins.ResponseHook = (*Plugin)(nil)
	_ plugins.HeaderWriter = (*Plugin)(nil)
)

// direction says which message a set of edits applies to.
type direction int

const (
	request direction = iota
	response
)

func (d direction) String() string {
	if d == request {
		return "request"
	}
	return "response"
}

// managed are the headers the gateway and fasthttp frame and route with;
// editing them would corrupt the message or bypass header hygiene. The
// values say why, for the error message.
var managed = map[string]string{
	"content-length":    "the gateway sets it from the body",
	"transfer-encoding": "the gateway frames the body itself",
	"connection":        "it is hop-by-hop and managed by the gateway",
	"keep-alive":        "it is hop-by-hop and managed by the gateway",
	"proxy-connection":  "it is hop-by-hop and managed by the gateway",
	"te":                "it is hop-by-hop and managed by the gateway",
	"trailer":           "it is hop-by-hop and managed by the gateway",
	"upgrade":           "it is hop-by-hop and managed by the gateway (websocket: true on the route)",
}

// managedRequest are request headers managed besides those in managed.
var managedRequest = map[string]string{
	"host":            "the upstream gets its target's host, or the client's with preserve_host: true on the route",
	"x-forwarded-for": "the gateway sets it from the peer address and server.trusted_proxies (remove is allowed)",
}

// singleValued are headers fasthttp keeps one value of: add would replace
// it, so it is refused in favour of set.
var singleValued = map[direction][]string{
	request:  {"content-type", "user-agent"},
	response: {"content-type", "server", "date"},
}

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	var s Settings
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	c := &compiler{sec: sec}
	p := &Plugin{file: sec.File}
	p.request = c.edits(request, s.Request)
	p.response = c.edits(response, s.Response)
	if err := errors.Join(c.errs...); err != nil {
		return nil, err
	}
	if p.request.empty() && p.response.empty() {
		return nil, sec.Errorf("", "nothing to do: give request or response with set, add or remove (e.g. response: { remove: [Server] })")
	}
	return p, nil
}

type compiler struct {
	sec  config.Section
	errs []error
}

func (c *compiler) errAt(n *yaml.Node, path, format string, args ...any) {
	c.errs = append(c.errs, config.Errorf(c.sec.File, n, path, fmt.Sprintf(format, args...)))
}

// edits compiles one direction. Names are checked as tokens and against
// the managed headers; values for control characters. A name may appear
// once per direction (folded: X-A and x_a are the same header to most
// applications).
func (c *compiler) edits(d direction, e *Edits) edits {
	var out edits
	if e == nil {
		return out
	}
	base := config.JoinPath(c.sec.Path, d.String())
	seen := map[string]string{} // folded name -> where it was first written
	name := func(field, raw string, n *yaml.Node, path string) ([]byte, bool) {
		if !config.IsToken(raw) {
			c.errAt(n, path, "%q is not a header name", raw)
			return nil, false
		}
		lower := strings.ToLower(raw)
		if why, ok := managed[lower]; ok {
			c.errAt(n, path, "%s cannot be edited: %s", raw, why)
			return nil, false
		}
		if why, ok := managedRequest[lower]; ok && d == request && (field != "remove" || lower == "host") {
			c.errAt(n, path, "%s cannot be edited: %s", raw, why)
			return nil, false
		}
		f := fold(raw)
		if field == "add" {
			for _, sv := range singleValued[d] {
				if lower == sv {
					c.errAt(n, path, "%s has a single value: use set", raw)
					return nil, false
				}
			}
		}
		if prev, dup := seen[f]; dup {
			c.errAt(n, path, "%s is already edited in %s (each header once per direction; names are compared ignoring case and with _ as -)", raw, prev)
			return nil, false
		}
		seen[f] = field
		return fasthttp.AppendNormalizedHeaderKey(nil, raw), true
	}
	value := func(v string, n *yaml.Node, path string) bool {
		for i := 0; i < len(v); i++ {
			if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
				c.errAt(n, path, "value must not contain control characters (CR, LF, NUL...)")
				return false
			}
		}
		return true
	}
	for i, raw := range e.Remove {
		n := itemNode(e.Meta.Pos("remove"), i)
		path := config.IndexPath(base+".remove", i)
		if canon, ok := name("remove", raw, n, path); ok {
			out.remove = append(out.remove, header{name: canon, raw: raw, node: n, path: path})
		}
	}
	for _, field := range []string{"set", "add"} {
		m := e.Set
		if field == "add" {
			m = e.Add
		}
		for _, raw := range sortedKeys(m) {
			n := keyNode(e.Meta.Pos(field), raw)
			path := base + "." + field + "." + raw
			canon, ok := name(field, raw, n, path)
			if !ok || !value(m[raw], valueNode(e.Meta.Pos(field), raw), path) {
				continue
			}
			h := header{name: canon, value: []byte(m[raw]), raw: raw, node: n, path: path}
			if field == "set" {
				out.set = append(out.set, h)
			} else {
				out.add = append(out.add, h)
			}
		}
	}
	return out
}

// CheckHeaders implements plugins.HeaderWriter: a request header the
// instance sets or adds must not be an identity header: X-User-* whatever
// isIdentity says, or a name isIdentity reports. Both are checked here,
// once the gateway knows every claimed name, so that one pass reports
// every such header of the file.
func (p *Plugin) CheckHeaders(isIdentity func(name string) bool) error {
	var errs []error
	for _, list := range [][]header{p.request.set, p.request.add} {
		for _, h := range list {
			switch {
			case strings.HasPrefix(fold(h.raw), "x-user-"):
				errs = append(errs, config.Errorf(p.file, h.node, h.path, fmt.Sprintf(
					"%s is an identity header (X-User-*; names match ignoring case and with _ as -): only the identity plugins (jwt, api-key) set it", h.raw)))
			case isIdentity != nil && isIdentity(h.raw):
				errs = append(errs, config.Errorf(p.file, h.node, h.path, fmt.Sprintf(
					"%s is an identity header (claimed by a jwt forward_claims, an api-key forward_header or tls.forward_client_cert; names match ignoring case and with _ as -): only the identity plugins set it", h.raw)))
			}
		}
	}
	return errors.Join(errs...)
}

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }

// fold returns the folded form of a header name: lower case, '_' as '-',
// the way the gateway matches identity headers.
func fold(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// keyNode returns the key node of name in mapping n, or n.
func keyNode(n *yaml.Node, name string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i]
			}
		}
	}
	return n
}

// valueNode returns the value node of name in mapping n, or n.
func valueNode(n *yaml.Node, name string) *yaml.Node {
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i+1]
			}
		}
	}
	return n
}

// itemNode returns item i of sequence n, or n.
func itemNode(n *yaml.Node, i int) *yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i]
	}
	return n
}
