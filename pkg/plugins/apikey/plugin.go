// Package apikey is the api-key plugin: machine clients authenticate with a
// static key sent in a header (or, weaker, a query parameter). Keys are
// listed in a keys file by the hex SHA-256 of the key, never the key
// itself; a valid key gives the request the identity of its entry
// (subject, roles, scopes), the same record the jwt plugin fills, so rbac,
// ratelimit (key: user) and the identity headers work alike.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "api-key"

// Defaults of the settings.
const (
	DefaultHeader        = "X-API-Key"
	DefaultForwardHeader = "X-User-ID"
)

// KeyPrefix starts every key Generate makes, so secret scanners and people
// recognise a leaked one.
const KeyPrefix = "gwk_"

// Settings are the api-key plugin's YAML settings.
type Settings struct {
	Header         string      `yaml:"header"`
	Query          string      `yaml:"query"`
	KeysFile       string      `yaml:"keys_file"`
	ForwardHeader  string      `yaml:"forward_header"`
	Optional       bool        `yaml:"optional"`
	KeepCredential bool        `yaml:"keep_credential"`
	Meta           config.Meta `yaml:"-"`
}

// Entry is one key of the keys file.
type Entry struct {
	ID      string      `yaml:"id" json:"id"`
	SHA256  string      `yaml:"sha256" json:"sha256"`
	Sub     string      `yaml:"sub" json:"sub"`
	Roles   []string    `yaml:"roles" json:"roles,omitempty"`
	Scopes  []string    `yaml:"scopes" json:"scopes,omitempty"`
	Expires string      `yaml:"expires" json:"expires,omitempty"`
	Meta    config.Meta `yaml:"-" json:"-"`
}

// keysDoc is the keys file.
type keysDoc struct {
	Keys []Entry `yaml:"keys"`
}

// Factory builds api-key plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// key is one compiled key entry. Its identity values are shared read-only
// with the requests it authenticates.
type key struct {
	id      string
	sub     []byte
	roles   []string
	scopes  []string
	headers []reqctx.Header
	// expires is the expiry in unix ns, 0 for none.
	expires int64
}

// Plugin is a compiled api-key plugin instance.
type Plugin struct {
	header   []byte // canonical; nil with query
	query    []byte // nil with header
	optional bool
	keep     bool
	forward  string
	keys     map[[sha256.Size]byte]*key
	now      func() time.Time
	file     plugins.File

	missing, unknown, expired, malformed *vm.Counter
	challenge, challengeInvalid          []byte
}

var (
	_ plugins.Plugin        = (*Plugin)(nil)
	_ plugins.Authenticator = (*Plugin)(nil)
	_ plugins.HeaderClaimer = (*Plugin)(nil)
	_ plugins.FileUser      = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	s := Settings{Header: DefaultHeader, ForwardHeader: DefaultForwardHeader}
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	var errs []error
	errf := func(field, format string, args ...any) { errs = append(errs, sec.Errorf(field, format, args...)) }
	p := &Plugin{optional: s.Optional, keep: s.KeepCredential, now: time.Now}
	if env != nil && env.Now != nil {
		p.now = env.Now
	}
	switch {
	case s.Meta.Has("query") && s.Meta.Has("header"):
		errf("query", "set header or query, not both")
	case s.Meta.Has("query"):
		if s.Query == "" || strings.ContainsAny(s.Query, "&=#? ") {
			errf("query", "%q is not a usable query parameter name", s.Query)
		}
		p.query = []byte(s.Query)
	default:
		if !config.IsToken(s.Header) {
			errf("header", "%q is not a valid header name", s.Header)
		} else if reserved(s.Header) {
			errf("header", "header %s cannot carry an API key", s.Header)
		}
		p.header = fasthttp.AppendNormalizedHeaderKey(nil, s.Header)
	}
	switch {
	case !config.IsToken(s.ForwardHeader):
		errf("forward_header", "%q is not a valid header name", s.ForwardHeader)
	case reserved(s.ForwardHeader):
		errf("forward_header", "header %s cannot carry the subject", s.ForwardHeader)
	case p.header != nil && foldEq(s.ForwardHeader, s.Header):
		errf("forward_header", "must differ from header: the key header is the client's, the subject header the gateway's")
	}
	p.forward = s.ForwardHeader
	if s.KeysFile == "" {
		errf("keys_file", "keys_file is required: a JSON or YAML file {\"keys\": [{\"id\", \"sha256\", \"sub\", \"roles\", \"expires\"}]}")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	path := s.KeysFile
	if !filepath.IsAbs(path) && sec.File != "" {
		// Relative to the configuration file, so the pair can move together.
		path = filepath.Join(filepath.Dir(sec.File), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, sec.Errorf("keys_file", "cannot read the keys: %v", err)
	}
	p.file = plugins.File{Path: path, Sum: sha256.Sum256(data)}
	fwd := fasthttp.AppendNormalizedHeaderKey(nil, s.ForwardHeader)
	keys, warnings, err := parseKeys(path, data, fwd, p.now())
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		warnings = append(warnings, sec.Warnf("keys_file", "%s lists no key: every request is refused (401)", path))
	}
	for _, w := range warnings {
		env.Warning(w)
	}
	p.keys = keys
	route := ""
	if env != nil {
		route = env.Route
	}
	m := metrics.ForRoute(route)
	p.missing = m.AuthRejected(metrics.ReasonMissing)
	p.unknown = m.AuthRejected(metrics.ReasonUnknownKey)
	p.expired = m.AuthRejected(metrics.ReasonExpired)
	p.malformed = m.AuthRejected(metrics.ReasonMalformed)
	p.challenge = []byte(`APIKey realm="gatewayd"`)
	p.challengeInvalid = []byte(`APIKey realm="gatewayd", error="invalid_key"`)
	return p, nil
}

// parseKeys decodes and checks a keys file (JSON, or YAML). Errors name the
// file, line and entry; expired entries are kept (they answer "API key
// expired") and reported as warnings.
func parseKeys(file string, data []byte, fwd []byte, now time.Time) (map[[sha256.Size]byte]*key, []*config.Warning, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, &config.Error{File: file, Path: "keys", Msg: "not a JSON or YAML document: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return nil, nil, &config.Error{File: file, Path: "keys", Msg: `empty file: expected {"keys": [...]}`}
	}
	var doc keysDoc
	if err := config.DecodeStrict(file, root.Content[0], "", &doc); err != nil {
		return nil, nil, err
	}
	var (
		errs     []error
		warnings []*config.Warning
		ids      = map[string]int{}
		out      = make(map[[sha256.Size]byte]*key, len(doc.Keys))
	)
	for i := range doc.Keys {
		e := &doc.Keys[i]
		path := config.IndexPath("keys", i)
		fail := func(field, format string, args ...any) {
			errs = append(errs, config.Errorf(file, e.Meta.Pos(field), config.JoinPath(path, field), fmt.Sprintf(format, args...)))
		}
		switch j, dup := ids[e.ID]; {
		case e.ID == "":
			fail("id", "every key needs an id (it names the key in logs and warnings)")
		case dup:
			fail("id", "id %q is already keys[%d]", e.ID, j)
		default:
			ids[e.ID] = i
		}
		var sum [sha256.Size]byte
		if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size {
			fail("sha256", "expected the 64 hex digits of the key's SHA-256 (printf %%s KEY | sha256sum), got %d characters", len(e.SHA256))
		} else {
			copy(sum[:], b)
			if other, dup := out[sum]; dup {
				fail("sha256", "the same key as %q", other.id)
			}
		}
		sub := e.Sub
		if sub == "" {
			sub = e.ID
		}
		k := &key{id: e.ID, sub: []byte(sub), roles: uniq(e.Roles), scopes: uniq(e.Scopes)}
		for j, r := range e.Roles {
			if strings.TrimSpace(r) == "" || strings.ContainsAny(r, " \t") {
				fail(config.IndexPath("roles", j), "a role is one non-empty word, got %q", r)
			}
		}
		if e.Expires != "" {
			t, err := time.Parse(time.RFC3339, e.Expires)
			if err != nil {
				fail("expires", "expected an RFC 3339 time such as 2027-01-01T00:00:00Z, got %q", e.Expires)
			} else {
				k.expires = t.UnixNano()
				if !now.Before(t) {
					warnings = append(warnings, config.Warnf(file, e.Meta.Pos("expires"), config.JoinPath(path, "expires"),
						fmt.Sprintf("key %q expired at %s: requests with it are refused (401); remove the entry", e.ID, e.Expires)))
				}
			}
		}
		k.headers = []reqctx.Header{{Name: fwd, Value: k.sub}}
		out[sum] = k
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, warnings, nil
}

func uniq(xs []string) []string {
	var out []string
	for _, x := range xs {
		x = strings.TrimSpace(x)
		if x != "" && !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// reservedHeaders may not carry a key or the subject: they frame the
// message, carry other credentials or are set by the gateway itself.
var reservedHeaders = map[string]bool{
	"host": true, "authorization": true, "proxy-authorization": true, "cookie": true,
	"content-length": true, "content-type": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "te": true, "trailer": true, "upgrade": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true, "forwarded": true,
	"x-request-id": true,
}

func reserved(h string) bool { return reservedHeaders[strings.ToLower(h)] }

// foldEq compares header names as the gateway's identity-header stripping
// does: case-insensitively, with '_' the same as '-'.
func foldEq(a, b string) bool {
	fold := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "-") }
	return fold(a) == fold(b)
}

// Close implements plugins.Plugin.
func (*Plugin) Close() error { return nil }

// Authenticates implements plugins.Authenticator: every request the plugin
// passes on carries a valid key, unless optional lets anonymous ones
// through.
func (p *Plugin) Authenticates() bool { return !p.optional }

// ClaimHeaders implements plugins.HeaderClaimer: forward_header carries the
// subject, so client-sent copies are stripped on every route.
func (p *Plugin) ClaimHeaders() []string { return []string{p.forward} }

// Files implements plugins.FileUser: a reload re-reads keys_file when it
// changed, even if gateway.yaml did not.
func (p *Plugin) Files() []plugins.File { return []plugins.File{p.file} }

// Generate returns a new random key (KeyPrefix and 32 random bytes,
// base64url) and the hex SHA-256 the keys file lists for it.
func Generate(r io.Reader) (k, sum string, err error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("api-key: random bytes: %w", err)
	}
	k = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return k, Sum(k), nil
}

// Sum returns the hex SHA-256 of a key, as the keys file lists it.
func Sum(k string) string {
	s := sha256.Sum256([]byte(k))
	return hex.EncodeToString(s[:])
}

// sortedIDs returns the key ids, for tests and messages.
func (p *Plugin) sortedIDs() []string {
	out := make([]string, 0, len(p.keys))
	for _, k := range p.keys {
		out = append(out, k.id)
	}
	sort.Strings(out)
	return out
}
