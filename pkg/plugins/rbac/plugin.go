// Package rbac is the rbac plugin: it lets a request through only when the
// identity recorded by jwt or api-key has one of the allowed roles and every required
// scope, optionally with different requirements per HTTP method.
package rbac

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "rbac"

// Settings are the rbac plugin's YAML settings.
type Settings struct {
	// Roles allows any of these roles (the token's role claim).
	Roles []string `yaml:"roles"`
	// Scopes requires all of these scopes (the space-separated scope claim).
	Scopes []string `yaml:"scopes"`
	// Rules override Roles and Scopes for the methods they list; the first
	// rule listing the request's method applies, and a rule listing GET
	// also covers HEAD unless a rule lists HEAD. Methods no rule covers use
	// Roles and Scopes; with neither, they are denied.
	Rules []Rule      `yaml:"rules"`
	Meta  config.Meta `yaml:"-"`
}

// Rule is the requirement for some methods.
type Rule struct {
	Methods []string    `yaml:"methods"`
	Roles   []string    `yaml:"roles"`
	Scopes  []string    `yaml:"scopes"`
	Meta    config.Meta `yaml:"-"`
}

// Factory builds rbac plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// policy is one compiled requirement: any of roles (when not empty) and
// all of scopes.
type policy struct {
	roles  []string
	scopes []string
}

type rule struct {
	methods []string
	policy  policy
}

// Plugin is a compiled rbac plugin instance.
type Plugin struct {
	top policy
	// denyOthers is set when there are rules but no top-level roles or
	// scopes: a method no rule covers is refused, never allowed by omission.
	denyOthers bool
	rules      []rule
	missing    *vm.Counter
	forbidden  *vm.Counter
}

var (
	_ plugins.Plugin   = (*Plugin)(nil)
	_ plugins.Requirer = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	var s Settings
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	p, err := compile(sec, &s)
	if err != nil {
		return nil, err
	}
	route := ""
	var routeMethods []string
	if env != nil {
		route, routeMethods = env.Route, env.Methods
	}
	if uncovered := p.uncovered(routeMethods); uncovered != "" {
		env.Warning(sec.Warnf("rules", "no top-level roles or scopes, and the rules do not cover %s: "+
			"those requests are refused (403) for every caller; list them in a rule, or add top-level roles or scopes", uncovered))
	}
	m := metrics.ForRoute(route)
	p.missing = m.AuthRejected(metrics.ReasonMissing)
	p.forbidden = m.AuthRejected(metrics.ReasonForbidden)
	return p, nil
}

// compile checks the settings and builds the lookup tables.
func compile(sec config.Section, s *Settings) (*Plugin, error) {
	c := compiler{sec: sec}
	if len(s.Roles) == 0 && len(s.Scopes) == 0 && len(s.Rules) == 0 {
		c.errs = append(c.errs, config.Errorf(sec.File, sec.Node, sec.Path,
			"needs roles, scopes or rules: an rbac entry that checks nothing would let every authenticated caller in"))
		return nil, errors.Join(c.errs...)
	}
	p := &Plugin{top: c.policy(s.Meta, "", s.Roles, s.Scopes)}
	seen := map[string]int{}
	for i, r := range s.Rules {
		base := config.IndexPath("rules", i)
		if len(r.Methods) == 0 {
			c.at(r.Meta.Node, base+".methods", "at least one method is required")
		}
		var cr rule
		for j, m := range r.Methods {
			field := config.IndexPath(base+".methods", j)
			node := item(r.Meta, "methods", j)
			up := strings.ToUpper(m)
			switch prev, dup := seen[up]; {
			case !config.IsToken(m):
				c.at(node, field, "%q is not an HTTP method", m)
			case dup:
				c.at(node, field, "%s is already covered by rules[%d] (the first matching rule wins)", up, prev)
			default:
				seen[up] = i
				cr.methods = append(cr.methods, up)
			}
		}
		cr.policy = c.policy(r.Meta, base, r.Roles, r.Scopes)
		p.rules = append(p.rules, cr)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	// HEAD is a GET without the body: the rule that covers GET covers it,
	// unless a rule of its own lists it.
	if get, ok := seen["GET"]; ok {
		if _, ok := seen["HEAD"]; !ok {
			p.rules[get].methods = append(p.rules[get].methods, "HEAD")
		}
	}
	p.denyOthers = len(s.Rules) > 0 && len(s.Roles) == 0 && len(s.Scopes) == 0
	return p, nil
}

// standardMethods are the methods a route may list, in the router's order.
var standardMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// uncovered describes the methods of a route (routeMethods; empty means
// every method) that p refuses to everyone because no rule covers them and
// there is no top-level policy, or returns "" when there are none.
func (p *Plugin) uncovered(routeMethods []string) string {
	if !p.denyOthers {
		return ""
	}
	covered := map[string]bool{}
	for _, r := range p.rules {
		for _, m := range r.methods {
			covered[m] = true
		}
	}
	candidates := routeMethods
	if len(candidates) == 0 {
		candidates = standardMethods
	} else if slices.Contains(candidates, "GET") && !slices.Contains(candidates, "HEAD") {
		// The router serves HEAD wherever GET is listed.
		candidates = append(slices.Clip(candidates), "HEAD")
	}
	var out []string
	for _, m := range candidates {
		if !covered[m] {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	switch {
	case len(routeMethods) == 0 && len(out) == 0:
		return "methods outside the standard ones"
	case len(routeMethods) == 0:
		return strings.Join(out, ", ") + " and methods outside the standard ones"
	}
	return strings.Join(out, ", ")
}

type compiler struct {
	sec  config.Section
	errs []error
}

func (c *compiler) at(n *yaml.Node, field, format string, args ...any) {
	if n == nil {
		n = c.sec.Node
	}
	c.errs = append(c.errs, config.Errorf(c.sec.File, n, config.JoinPath(c.sec.Path, field), fmt.Sprintf(format, args...)))
}

// policy validates one roles/scopes pair; base is "" or "rules[i]".
func (c *compiler) policy(meta config.Meta, base string, roles, scopes []string) policy {
	field := func(name string, i int) string {
		if base == "" {
			return config.IndexPath(name, i)
		}
		return config.IndexPath(base+"."+name, i)
	}
	var p policy
	for i, r := range roles {
		if strings.TrimSpace(r) == "" {
			c.at(item(meta, "roles", i), field("roles", i), "a role must not be empty")
			continue
		}
		p.roles = append(p.roles, r)
	}
	for i, s := range scopes {
		switch {
		case strings.TrimSpace(s) == "":
			c.at(item(meta, "scopes", i), field("scopes", i), "a scope must not be empty")
		case strings.ContainsAny(s, " \t"):
			c.at(item(meta, "scopes", i), field("scopes", i), "%q: a scope cannot contain spaces (the scope claim is space-separated)", s)
		default:
			p.scopes = append(p.scopes, s)
		}
	}
	return p
}

// item returns the i-th element node of a list field, or nil.
func item(meta config.Meta, field string, i int) *yaml.Node {
	if !meta.Has(field) {
		return nil
	}
	n := meta.Pos(field)
	if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return n
	}
	return n.Content[i]
}

// Requires implements plugins.Requirer: the identity comes from an identity
// plugin (jwt or api-key).
func (*Plugin) Requires() []string { return []string{plugins.Identity} }

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }
