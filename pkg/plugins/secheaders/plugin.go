// Package secheaders is the security-headers plugin: it sets the usual
// browser hardening headers (HSTS, X-Content-Type-Options, X-Frame-Options,
// Referrer-Policy, Content-Security-Policy) on every response of a route,
// gateway error responses included, replacing the upstream's values.
package secheaders

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "security-headers"

// Defaults of the settings.
const (
	DefaultFrameOptions   = "DENY"
	DefaultReferrerPolicy = "strict-origin-when-cross-origin"
	// DefaultHSTSMaxAge is two years, the value hstspreload.org asks for.
	DefaultHSTSMaxAge = 2 * 365 * 24 * time.Hour
	// minPreloadMaxAge is the least max_age the preload list accepts.
	minPreloadMaxAge = 365 * 24 * time.Hour
	// Off turns a header off.
	Off = "off"
)

// Settings are the plugin's YAML settings.
type Settings struct {
	// HSTS is true, false or an HSTS mapping.
	HSTS               *yaml.Node  `yaml:"hsts"`
	FrameOptions       string      `yaml:"frame_options"`
	ContentTypeNosniff bool        `yaml:"content_type_nosniff"`
	ReferrerPolicy     string      `yaml:"referrer_policy"`
	CSP                string      `yaml:"csp"`
	Meta               config.Meta `yaml:"-"`
}

// HSTS is the mapping form of the hsts setting.
type HSTS struct {
	MaxAge            config.Duration `yaml:"max_age"`
	IncludeSubdomains bool            `yaml:"include_subdomains"`
	Preload           bool            `yaml:"preload"`
	Meta              config.Meta     `yaml:"-"`
}

// Factory builds security-headers plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// header is one precomputed response header.
type header struct{ name, value []byte }

// Plugin is a compiled security-headers plugin instance.
type Plugin struct {
	headers []header
	hsts    []byte // nil when off
}

var (
	_ plugins.Plugin       = (*Plugin)(nil)
	_ plugins.ResponseHook = (*Plugin)(nil)
)

// referrerPolicies are the tokens of the Referrer-Policy specification.
var referrerPolicies = []string{
	"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url",
}

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, _ *plugins.Env) (plugins.Plugin, error) {
	s := Settings{FrameOptions: DefaultFrameOptions, ContentTypeNosniff: true, ReferrerPolicy: DefaultReferrerPolicy}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	var errs []error
	p := &Plugin{}
	add := func(name, value string) {
		p.headers = append(p.headers, header{name: fasthttp.AppendNormalizedHeaderKey(nil, name), value: []byte(value)})
	}
	if s.ContentTypeNosniff {
		add(fasthttp.HeaderXContentTypeOptions, "nosniff")
	}
	switch strings.ToUpper(s.FrameOptions) {
	case "DENY", "SAMEORIGIN":
		add(fasthttp.HeaderXFrameOptions, strings.ToUpper(s.FrameOptions))
	case "OFF":
	default:
		hint := ""
		if strings.HasPrefix(strings.ToUpper(s.FrameOptions), "ALLOW-FROM") {
			hint = " (ALLOW-FROM is obsolete: use csp with frame-ancestors)"
		}
		errs = append(errs, sec.Errorf("frame_options", "expected DENY, SAMEORIGIN or off, got %q%s", s.FrameOptions, hint))
	}
	if s.ReferrerPolicy != Off {
		if err := checkReferrerPolicy(s.ReferrerPolicy); err != "" {
			errs = append(errs, sec.Errorf("referrer_policy", "%s", err))
		} else {
			add(fasthttp.HeaderReferrerPolicy, s.ReferrerPolicy)
		}
	}
	if csp := strings.TrimSpace(s.CSP); csp != "" {
		if strings.ContainsFunc(csp, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			errs = append(errs, sec.Errorf("csp", "must be one line without control characters"))
		} else {
			add(fasthttp.HeaderContentSecurityPolicy, csp)
		}
	}
	hsts, err := compileHSTS(sec, s.HSTS)
	errs = append(errs, err)
	p.hsts = hsts
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// compileHSTS turns the hsts setting into the header value (nil = off).
func compileHSTS(sec config.Section, n *yaml.Node) ([]byte, error) {
	if n == nil {
		return nil, nil
	}
	h := HSTS{MaxAge: config.Duration(DefaultHSTSMaxAge)}
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		on, _ := strconv.ParseBool(n.Value)
		if !on {
			return nil, nil
		}
	case n.Kind == yaml.MappingNode:
		if err := config.DecodeStrict(sec.File, n, config.JoinPath(sec.Path, "hsts"), &h); err != nil {
			return nil, err
		}
	default:
		return nil, sec.Errorf("hsts", "expected true, false or a mapping {max_age, include_subdomains, preload}")
	}
	maxAge := int64(h.MaxAge.D() / time.Second)
	if h.Preload {
		var errs []error
		at := func(field, msg string) {
			errs = append(errs, config.Errorf(sec.File, h.Meta.Pos(field), config.JoinPath(sec.Path, "hsts."+field), msg))
		}
		if h.MaxAge.D() < minPreloadMaxAge {
			at("max_age", fmt.Sprintf("preload needs a max_age of at least 365d, got %s", h.MaxAge))
		}
		if !h.IncludeSubdomains {
			at("include_subdomains", "preload needs include_subdomains: true")
		}
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	v := "max-age=" + strconv.FormatInt(maxAge, 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return []byte(v), nil
}

// checkReferrerPolicy validates a policy (or a comma-separated fallback
// list) and returns a message, or "".
func checkReferrerPolicy(s string) string {
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		valid := false
		for _, p := range referrerPolicies {
			valid = valid || tok == p
		}
		if !valid {
			return fmt.Sprintf("unknown policy %q (expected one of %s, or off)", tok, strings.Join(referrerPolicies, ", "))
		}
	}
	return ""
}

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }
