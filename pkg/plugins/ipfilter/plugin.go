// Package ipfilter is the ip-filter plugin: it answers 403 to clients whose
// address is in a deny list, or, when an allow list is given, not in it.
// The client address is the one the gateway resolved for the request,
// honouring server.trusted_proxies exactly as the forwarding headers, the
// access log and ratelimit's key: ip do: an X-Forwarded-For from a peer
// outside trusted_proxies is ignored.
package ipfilter

import (
	"errors"
	"net/netip"
	"strings"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "ip-filter"

// Settings are the plugin's YAML settings.
type Settings struct {
	// Allow lists the networks allowed; empty allows every address not
	// denied.
	Allow []string `yaml:"allow"`
	// Deny lists the networks refused; it wins over Allow.
	Deny []string    `yaml:"deny"`
	Meta config.Meta `yaml:"-"`
}

// Factory builds ip-filter plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// Plugin is a compiled ip-filter plugin instance.
type Plugin struct {
	allow    []netip.Prefix
	deny     []netip.Prefix
	rejected *vm.Counter
}

var _ plugins.Plugin = (*Plugin)(nil)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	var s Settings
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	var errs []error
	p := &Plugin{}
	p.allow, errs = parseList(sec, s.Meta, "allow", s.Allow, errs)
	p.deny, errs = parseList(sec, s.Meta, "deny", s.Deny, errs)
	if len(s.Allow) == 0 && len(s.Deny) == 0 && len(errs) == 0 {
		errs = append(errs, sec.Errorf("", "give allow, deny or both (CIDRs or addresses, e.g. allow: [10.0.0.0/8])"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	route := ""
	if env != nil {
		route = env.Route
	}
	p.rejected = metrics.ForRoute(route).IPFilterRejected()
	return p, nil
}

// parseList compiles one list: CIDRs and bare addresses (a /32 or /128),
// IPv4 and IPv6. IPv4-mapped IPv6 prefixes become IPv4, as clients are
// compared unmapped.
func parseList(sec config.Section, m config.Meta, field string, list []string, errs []error) ([]netip.Prefix, []error) {
	out := make([]netip.Prefix, 0, len(list))
	seq := m.Pos(field)
	for i, raw := range list {
		p, msg := parsePrefix(raw)
		if msg != "" {
			n := seq
			if seq != nil && seq.Kind == yaml.SequenceNode && i < len(seq.Content) {
				n = seq.Content[i]
			}
			errs = append(errs, config.Errorf(sec.File, n, config.IndexPath(config.JoinPath(sec.Path, field), i), msg))
			continue
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	return out, errs
}

// parsePrefix parses "10.0.0.0/8", "2001:db8::/32", "192.0.2.7" or
// "2001:db8::7"; the message is "" on success.
func parsePrefix(raw string) (netip.Prefix, string) {
	s := strings.TrimSpace(raw)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		pp, err := netip.ParsePrefix(s)
		if err != nil {
			return p, "expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or an address, got " + quote(raw)
		}
		p = pp
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, "expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or an address, got " + quote(raw)
		}
		if a.Zone() != "" {
			return p, "zoned addresses are not supported, got " + quote(raw)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, "an IPv4-mapped prefix must be at least /96, got " + quote(raw)
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), ""
}

func quote(s string) string { return `"` + s + `"` }

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }
