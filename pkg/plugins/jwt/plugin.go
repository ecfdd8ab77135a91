// Package jwt is the jwt plugin: it verifies the bearer token of each
// request (HMAC secret, PEM public key or JSON Web Key Set), fills the
// request's identity and forwards chosen claims to the upstream as headers.
// Verified tokens are cached, so the steady state neither parses nor
// allocates; expiry is still checked against the clock on every request.
package jwt

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/metrics"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// Kind is the plugin's name in gateway.yaml.
const Kind = "jwt"

// Defaults of the settings.
const (
	DefaultAlgorithm     = "HS256"
	DefaultLeeway        = 30 * time.Second
	DefaultMaxTokenBytes = 8 << 10
	DefaultJWKSRefresh   = 5 * time.Minute
	DefaultCacheSize     = 10000
	DefaultCacheTTL      = time.Minute
)

// Limits on the settings.
const (
	minMaxTokenBytes = 128
	minJWKSRefresh   = refetchInterval
)

// Settings are the jwt plugin's YAML settings.
type Settings struct {
	Algorithms    []string          `yaml:"algorithms"`
	Secret        string            `yaml:"secret"`
	PublicKeyFile string            `yaml:"public_key_file"`
	JWKSFile      string            `yaml:"jwks_file"`
	JWKSURL       string            `yaml:"jwks_url"`
	JWKSRefresh   config.Duration   `yaml:"jwks_refresh"`
	Issuer        string            `yaml:"issuer"`
	Audience      string            `yaml:"audience"`
	Leeway        config.Duration   `yaml:"leeway"`
	Cookie        string            `yaml:"cookie"`
	ForwardClaims map[string]string `yaml:"forward_claims"`
	Optional      bool              `yaml:"optional"`
	MaxTokenBytes config.Size       `yaml:"max_token_bytes"`
	CacheSize     int               `yaml:"cache_size"`
	CacheTTL      config.Duration   `yaml:"cache_ttl"`
	Meta          config.Meta       `yaml:"-"`
}

// defaultSettings returns the settings of a bare "jwt" entry.
func defaultSettings() Settings {
	return Settings{
		Algorithms:    []string{DefaultAlgorithm},
		JWKSRefresh:   config.Duration(DefaultJWKSRefresh),
		Leeway:        config.Duration(DefaultLeeway),
		MaxTokenBytes: DefaultMaxTokenBytes,
		CacheSize:     DefaultCacheSize,
		CacheTTL:      config.Duration(DefaultCacheTTL),
	}
}

// Factory builds jwt plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// forward is one claim forwarded to the upstream as a header.
type forward struct {
	claim  string
	header []byte // canonical header name
}

// Plugin is a compiled jwt plugin instance.
type Plugin struct {
	parser   *jwtlib.Parser
	keyfunc  jwtlib.Keyfunc
	algs     []string
	now      func() time.Time
	leeway   int64 // ns
	optional bool
	maxBytes int
	cookie   string
	forwards []forward

	secret []byte
	static *keySet
	remote *remoteKeys

	cache    *tokenCache // nil when off
	cacheTTL int64       // ns

	rejects [numReasons]rejection
	release func() error
}

var (
	_ plugins.Plugin        = (*Plugin)(nil)
	_ plugins.HeaderClaimer = (*Plugin)(nil)
)

// Build implements plugins.Factory.
func (Factory) Build(sec config.Section, env *plugins.Env) (plugins.Plugin, error) {
	s := defaultSettings()
	if err := sec.Decode(&s); err != nil {
		return nil, err
	}
	return build(sec, env, &s)
}

func build(sec config.Section, env *plugins.Env, s *Settings) (*Plugin, error) {
	v := validator{sec: sec, meta: s.Meta}
	fams := v.algorithms(s.Algorithms)
	v.keySource(s, fams)
	if s.Meta.Has("jwks_refresh") && s.JWKSURL == "" {
		v.errf("jwks_refresh", "only applies with jwks_url")
	}
	if int64(s.MaxTokenBytes) < minMaxTokenBytes {
		v.errf("max_token_bytes", "must be at least %d bytes, got %d", minMaxTokenBytes, int64(s.MaxTokenBytes))
	}
	if s.Cookie != "" && !config.IsToken(s.Cookie) {
		v.errf("cookie", "%q is not a valid cookie name", s.Cookie)
	}
	if s.CacheSize < 0 {
		v.errf("cache_size", "must not be negative (0 turns the cache off), got %d", s.CacheSize)
	}
	if s.CacheSize > 0 && s.CacheTTL <= 0 {
		v.errf("cache_ttl", "must be positive (set cache_size: 0 to turn the cache off)")
	}
	forwards := v.forwardClaims(s.ForwardClaims)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}

	now := time.Now
	log := zap.NewNop()
	route := ""
	if env != nil {
		if env.Now != nil {
			now = env.Now
		}
		if env.Logger != nil {
			log = env.Logger
		}
		route = env.Route
	}
	p := &Plugin{
		now:      now,
		algs:     slices.Clone(s.Algorithms),
		leeway:   int64(s.Leeway.D()),
		optional: s.Optional,
		maxBytes: int(s.MaxTokenBytes),
		cookie:   s.Cookie,
		forwards: forwards,
		secret:   v.secret,
		static:   v.static,
		cacheTTL: int64(s.CacheTTL.D()),
		release:  func() error { return nil },
	}
	if s.CacheSize > 0 {
		p.cache = newTokenCache(s.CacheSize)
	}
	if v.static != nil {
		for _, k := range v.skipped {
			log.Warn("jwt: jwks_file key skipped", zap.String("route", route), zap.String("key", k))
		}
	}
	if s.JWKSURL != "" {
		if err := p.acquireRemote(env, s.JWKSURL, s.JWKSRefresh.D(), log, now); err != nil {
			return nil, sec.Errorf("jwks_url", "%v", err)
		}
	}
	opts := []jwtlib.ParserOption{
		jwtlib.WithValidMethods(p.algs),
		jwtlib.WithLeeway(s.Leeway.D()),
		jwtlib.WithExpirationRequired(),
		jwtlib.WithIssuedAt(),
		jwtlib.WithTimeFunc(now),
		// Spare bits in the last character of a part must be zero, so a
		// token has one spelling (RFC 7515 §2, RFC 4648 §3.5).
		jwtlib.WithStrictDecoding(),
	}
	if s.Issuer != "" {
		opts = append(opts, jwtlib.WithIssuer(s.Issuer))
	}
	if s.Audience != "" {
		opts = append(opts, jwtlib.WithAudience(s.Audience))
	}
	p.parser = jwtlib.NewParser(opts...)
	p.keyfunc = p.key
	m := metrics.ForRoute(route)
	for r := range p.rejects {
		p.rejects[r] = newRejection(reason(r), m)
	}
	return p, nil
}

// acquireRemote shares one downloader per URL and refresh interval across
// instances and reloads.
func (p *Plugin) acquireRemote(env *plugins.Env, u string, refresh time.Duration, log *zap.Logger, now func() time.Time) error {
	create := func() (io.Closer, error) { return newRemoteKeys(u, refresh, log, now), nil }
	if env == nil || env.Resources == nil {
		rk, _ := create()
		p.remote = rk.(*remoteKeys)
		p.release = rk.Close
		return nil
	}
	c, release, err := env.Resources.Acquire("jwt/jwks "+u+" "+refresh.String(), create)
	if err != nil {
		return err
	}
	p.remote = c.(*remoteKeys)
	p.release = release
	return nil
}

// Close releases the JWKS downloader, if any.
func (p *Plugin) Close() error { return p.release() }

// ClaimHeaders implements plugins.HeaderClaimer: the headers that carry
// forwarded claims, which the gateway strips from client requests.
func (p *Plugin) ClaimHeaders() []string {
	out := make([]string, len(p.forwards))
	for i, f := range p.forwards {
		out[i] = string(f.header)
	}
	return out
}

// Authenticates implements plugins.Authenticator: every request the plugin
// passes on carries a verified token, unless optional lets anonymous ones
// through.
func (p *Plugin) Authenticates() bool { return !p.optional }

// validator collects the configuration errors of one section.
type validator struct {
	sec  config.Section
	meta config.Meta
	errs []error

	secret  []byte
	static  *keySet
	skipped []string
}

func (v *validator) errf(field, format string, args ...any) {
	if field == "" {
		v.errs = append(v.errs, config.Errorf(v.sec.File, v.sec.Node, v.sec.Path, fmt.Sprintf(format, args...)))
		return
	}
	v.errs = append(v.errs, v.sec.Errorf(field, format, args...))
}

// errAt reports an error at a node below the section.
func (v *validator) errAt(n *yaml.Node, field, format string, args ...any) {
	if n == nil {
		v.errf(field, format, args...)
		return
	}
	v.errs = append(v.errs, config.Errorf(v.sec.File, n, config.JoinPath(v.sec.Path, field), fmt.Sprintf(format, args...)))
}

func (v *validator) item(field string, i int) *yaml.Node {
	n := v.meta.Pos(field)
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// algorithms checks the list and returns the key families it needs.
func (v *validator) algorithms(algs []string) map[algFamily]bool {
	fams := map[algFamily]bool{}
	if len(algs) == 0 {
		v.errf("algorithms", "at least one algorithm is required (e.g. [HS256])")
		return fams
	}
	for i, a := range algs {
		field := config.IndexPath("algorithms", i)
		info, ok := algorithms[a]
		switch {
		case strings.EqualFold(a, "none"):
			v.errAt(v.item("algorithms", i), field, `"none" is never accepted: unsigned tokens would let anyone in`)
		case !ok:
			v.errAt(v.item("algorithms", i), field, "unknown algorithm %q (expected one of %s)", a, algorithmNames)
		default:
			fams[info.family] = true
		}
	}
	if fams[famHMAC] && len(fams) > 1 {
		v.errf("algorithms", "cannot mix HMAC (HS*) and public-key algorithms: one plugin has exactly one key source")
	}
	return fams
}

// keySource checks that exactly one key source is set and that it fits the
// algorithms, and loads it.
func (v *validator) keySource(s *Settings, fams map[algFamily]bool) {
	var set []string
	for _, f := range [...]struct{ name, val string }{
		{"secret", s.Secret}, {"public_key_file", s.PublicKeyFile}, {"jwks_file", s.JWKSFile}, {"jwks_url", s.JWKSURL},
	} {
		if f.val != "" {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		v.errf("", "one of secret, public_key_file, jwks_file or jwks_url is required")
		return
	case 1:
	default:
		v.errf(set[1], "only one key source may be set, got %s", strings.Join(set, " and "))
		return
	}
	source := set[0]
	if source == "secret" {
		v.secretKey(s)
		return
	}
	if !v.meta.Has("algorithms") {
		v.errf(source, "algorithms defaults to [%s], which needs secret: list the public-key algorithms the issuer uses (e.g. algorithms: [RS256])", DefaultAlgorithm)
		return
	}
	for i, a := range s.Algorithms {
		if info, ok := algorithms[a]; ok && info.family == famHMAC {
			v.errAt(v.item("algorithms", i), config.IndexPath("algorithms", i), "%s needs secret, not %s", a, source)
		}
	}
	if fams[famHMAC] {
		return
	}
	switch source {
	case "public_key_file":
		data, err := os.ReadFile(s.PublicKeyFile)
		if err != nil {
			v.errf(source, "cannot read the key: %v", err)
			return
		}
		k, err := parsePublicKeyPEM(data)
		if err != nil {
			v.errf(source, "not a usable public key: %v", err)
			return
		}
		for i, a := range s.Algorithms {
			if _, ok := algorithms[a]; ok && !k.fits(a) {
				v.errAt(v.item("algorithms", i), config.IndexPath("algorithms", i),
					"%s does not fit public_key_file, which holds %s (use %s)", a, k.describe(), fittingAlgs(k))
			}
		}
		v.static = newKeySet([]*verifyKey{k})
	case "jwks_file":
		data, err := os.ReadFile(s.JWKSFile)
		if err != nil {
			v.errf(source, "cannot read the key set: %v", err)
			return
		}
		ks, skipped, err := parseJWKS(data)
		if err != nil {
			v.errf(source, "%v", err)
			return
		}
		usable := false
		for _, k := range ks.all {
			for _, a := range s.Algorithms {
				usable = usable || k.fits(a)
			}
		}
		if !usable {
			v.errf(source, "no key in the set fits algorithms [%s]", strings.Join(s.Algorithms, ", "))
			return
		}
		v.static, v.skipped = ks, skipped
	case "jwks_url":
		u, err := url.Parse(s.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.errf(source, "expected an http:// or https:// URL, got %q", config.RedactURL(s.JWKSURL))
		}
		if s.JWKSRefresh.D() < minJWKSRefresh {
			v.errf("jwks_refresh", "must be at least %s, got %s", minJWKSRefresh, s.JWKSRefresh)
		}
	}
}

func (v *validator) secretKey(s *Settings) {
	need, needAlg := 0, ""
	for i, a := range s.Algorithms {
		info, ok := algorithms[a]
		if !ok {
			continue
		}
		if info.family != famHMAC {
			v.errAt(v.item("algorithms", i), config.IndexPath("algorithms", i), "%s needs public_key_file, jwks_file or jwks_url, not secret", a)
			continue
		}
		if info.minBytes > need {
			need, needAlg = info.minBytes, a
		}
	}
	if len(s.Secret) < need {
		v.errf("secret", "must be at least %d bytes for %s, got %d: a shorter HMAC key can be brute-forced offline from any token it signed (RFC 7518 §3.2 requires a key as long as the hash output); %s",
			need, needAlg, len(s.Secret), auth.SecretAdvice)
		return
	}
	// need is 0 when no algorithm is a valid HS* one: that error is
	// reported already, and the secret would never be used.
	if err := auth.CheckSecret([]byte(s.Secret)); need > 0 && err != nil {
		v.errf("secret", "%v: %s", err, auth.SecretAdvice)
		return
	}
	v.secret = []byte(s.Secret)
}

// reservedHeaders may never carry a claim: they frame the message, carry
// credentials or are set by the gateway itself.
var reservedHeaders = map[string]bool{
	"host": true, "authorization": true, "proxy-authorization": true, "cookie": true,
	"content-length": true, "content-type": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "te": true, "trailer": true, "upgrade": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true, "forwarded": true,
	"x-request-id": true,
}

// forwardClaims checks forward_claims and returns it sorted by claim.
func (v *validator) forwardClaims(m map[string]string) []forward {
	claims := make([]string, 0, len(m))
	for c := range m {
		claims = append(claims, c)
	}
	sort.Strings(claims)
	node := v.meta.Pos("forward_claims")
	seen := map[string]string{}
	out := make([]forward, 0, len(m))
	for _, c := range claims {
		h := m[c]
		field := config.JoinPath("forward_claims", c)
		var at *yaml.Node
		if node != nil && node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == c {
					at = node.Content[i+1]
				}
			}
		}
		lower := strings.ToLower(h)
		switch {
		case !config.IsToken(h):
			v.errAt(at, field, "%q is not a valid header name", h)
			continue
		case reservedHeaders[lower]:
			v.errAt(at, field, "header %s cannot carry a claim", h)
			continue
		case seen[lower] != "":
			v.errAt(at, field, "header %s already carries claim %q", h, seen[lower])
			continue
		}
		seen[lower] = c
		out = append(out, forward{claim: c, header: fasthttp.AppendNormalizedHeaderKey(nil, h)})
	}
	return out
}

func fittingAlgs(k *verifyKey) string {
	var out []string
	for _, a := range strings.Split(algorithmNames, ", ") {
		if k.fits(a) {
			out = append(out, a)
		}
	}
	return strings.Join(out, " or ")
}
