// Package jwt is the jwt plugin: it verifies the bearer token of each
// request against one or several identity providers (HMAC secret, PEM
// public key or JSON Web Key Set each), fills the request's identity
// (subject, roles, scopes, forwarded claims) and forwards chosen claims to
// the upstream as headers. The token's iss selects the provider, and only
// that provider's keys, for its own algorithms, can verify it. Verified
// tokens are cached with their normalised identity, so the steady state
// neither parses nor allocates; expiry is still checked against the clock on
// every request.
package jwt

import (
	"crypto/sha256"
	"errors"
	"fmt"
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
	DefaultAlgorithm       = "HS256"
	DefaultLeeway          = 30 * time.Second
	DefaultMaxTokenBytes   = 8 << 10
	DefaultJWKSRefresh     = 5 * time.Minute
	DefaultJWKSRefetch     = 10 * time.Second
	DefaultCacheSize       = 10000
	DefaultCacheTTL        = time.Minute
	DefaultRolesClaim      = "role"
	DefaultType            = "access"
	DefaultTypClaim        = "typ"
	defaultScopesClaim     = "scope"
	defaultScopesClaimNext = "scp"
)

// Limits on the settings.
const (
	minMaxTokenBytes = 128
	minJWKSRefetch   = time.Second
)

// Settings are the jwt plugin's YAML settings. The provider settings
// (issuer, key source, algorithms, audience, typ, claims) are written either
// once at the top level, which means one provider, or per entry of
// providers; never both.
type Settings struct {
	Providers     []Provider        `yaml:"providers"`
	Algorithms    []string          `yaml:"algorithms"`
	Secret        string            `yaml:"secret"`
	PublicKeyFile string            `yaml:"public_key_file"`
	JWKSFile      string            `yaml:"jwks_file"`
	JWKSURL       string            `yaml:"jwks_url"`
	JWKSRefresh   config.Duration   `yaml:"jwks_refresh"`
	JWKSRefetch   config.Duration   `yaml:"jwks_refetch_interval"`
	Issuer        string            `yaml:"issuer"`
	Audience      *yaml.Node        `yaml:"audience"`
	Typ           []string          `yaml:"typ"`
	TypClaim      string            `yaml:"typ_claim"`
	RolesClaim    string            `yaml:"roles_claim"`
	ScopesClaim   string            `yaml:"scopes_claim"`
	Leeway        config.Duration   `yaml:"leeway"`
	Cookie        string            `yaml:"cookie"`
	ForwardClaims map[string]string `yaml:"forward_claims"`
	Optional      bool              `yaml:"optional"`
	MaxTokenBytes config.Size       `yaml:"max_token_bytes"`
	CacheSize     int               `yaml:"cache_size"`
	CacheTTL      config.Duration   `yaml:"cache_ttl"`
	Meta          config.Meta       `yaml:"-"`
}

// Provider is one identity provider of the providers list: the issuer its
// tokens name in iss, where its keys come from and how its access tokens
// are shaped.
type Provider struct {
	Issuer        string          `yaml:"issuer"`
	Algorithms    []string        `yaml:"algorithms"`
	Secret        string          `yaml:"secret"`
	PublicKeyFile string          `yaml:"public_key_file"`
	JWKSFile      string          `yaml:"jwks_file"`
	JWKSURL       string          `yaml:"jwks_url"`
	JWKSRefresh   config.Duration `yaml:"jwks_refresh"`
	JWKSRefetch   config.Duration `yaml:"jwks_refetch_interval"`
	Audience      *yaml.Node      `yaml:"audience"`
	Typ           []string        `yaml:"typ"`
	TypClaim      string          `yaml:"typ_claim"`
	RolesClaim    string          `yaml:"roles_claim"`
	ScopesClaim   string          `yaml:"scopes_claim"`
	Meta          config.Meta     `yaml:"-"`
}

// providerKeys are the top-level keys that belong to the single-provider
// form, and so cannot be written next to providers.
var providerKeys = []string{
	"issuer", "algorithms", "secret", "public_key_file", "jwks_file", "jwks_url", "jwks_refresh",
	"jwks_refetch_interval", "audience", "typ", "typ_claim", "roles_claim", "scopes_claim",
}

// defaultSettings returns the settings of a bare "jwt" entry.
func defaultSettings() Settings {
	return Settings{
		Algorithms:    []string{DefaultAlgorithm},
		JWKSRefresh:   config.Duration(DefaultJWKSRefresh),
		JWKSRefetch:   config.Duration(DefaultJWKSRefetch),
		Typ:           []string{DefaultType},
		TypClaim:      DefaultTypClaim,
		RolesClaim:    DefaultRolesClaim,
		Leeway:        config.Duration(DefaultLeeway),
		MaxTokenBytes: DefaultMaxTokenBytes,
		CacheSize:     DefaultCacheSize,
		CacheTTL:      config.Duration(DefaultCacheTTL),
	}
}

// single returns the top-level provider settings as one provider.
func (s *Settings) single() Provider {
	return Provider{
		Issuer: s.Issuer, Algorithms: s.Algorithms, Secret: s.Secret, PublicKeyFile: s.PublicKeyFile,
		JWKSFile: s.JWKSFile, JWKSURL: s.JWKSURL, JWKSRefresh: s.JWKSRefresh, JWKSRefetch: s.JWKSRefetch,
		Audience: s.Audience, Typ: s.Typ, TypClaim: s.TypClaim, RolesClaim: s.RolesClaim, ScopesClaim: s.ScopesClaim, Meta: s.Meta,
	}
}

// withDefaults fills what a providers entry left out.
func (pv *Provider) withDefaults() {
	if !pv.Meta.Has("algorithms") {
		pv.Algorithms = []string{DefaultAlgorithm}
	}
	if !pv.Meta.Has("jwks_refresh") {
		pv.JWKSRefresh = config.Duration(DefaultJWKSRefresh)
	}
	if !pv.Meta.Has("jwks_refetch_interval") {
		pv.JWKSRefetch = config.Duration(DefaultJWKSRefetch)
	}
	if pv.Typ == nil {
		// Absent or empty (typ:); typ: [] is an empty, non-nil list.
		pv.Typ = []string{DefaultType}
	}
	if !pv.Meta.Has("typ_claim") {
		pv.TypClaim = DefaultTypClaim
	}
	if !pv.Meta.Has("roles_claim") {
		pv.RolesClaim = DefaultRolesClaim
	}
}

// Factory builds jwt plugins. The zero value is ready to use.
type Factory struct{}

var _ plugins.Factory = Factory{}

// Kind implements plugins.Factory.
func (Factory) Kind() string { return Kind }

// forward is one claim forwarded to the upstream as a header.
type forward struct {
	claim  claimPath
	header []byte // canonical header name
}

// Plugin is a compiled jwt plugin instance.
type Plugin struct {
	parser   *jwtlib.Parser
	algs     []string // every provider's algorithms
	now      func() time.Time
	leeway   int64 // ns
	optional bool
	maxBytes int
	cookie   string
	forwards []forward

	providers []*provider
	byIssuer  map[string]*provider
	// anyIssuer is the provider of the single-provider form without an
	// issuer: it takes every token, whatever its iss.
	anyIssuer *provider

	cache    *tokenCache // nil when off
	cacheTTL int64       // ns
	sets     setTable

	rejects [numReasons]rejection
}

var (
	_ plugins.Plugin        = (*Plugin)(nil)
	_ plugins.HeaderClaimer = (*Plugin)(nil)
	_ plugins.Authenticator = (*Plugin)(nil)
	_ plugins.FileUser      = (*Plugin)(nil)
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
	var specs []Provider
	var prefixes []string
	if s.Meta.Has("providers") {
		for _, k := range providerKeys {
			if s.Meta.Has(k) {
				v.errf(k, "%s belongs in each entry of providers: write the single-provider form or providers, not both", k)
			}
		}
		if len(s.Providers) == 0 {
			v.errf("providers", "list at least one provider (issuer and key source), or remove providers and use the single-provider form")
		}
		seen := map[string]int{}
		for i := range s.Providers {
			pv := s.Providers[i]
			pv.withDefaults()
			prefix := config.IndexPath("providers", i)
			if pv.Issuer == "" {
				v.errNode(pv.Meta.Node, prefix+".issuer", "every provider needs an issuer: the token's iss selects the provider")
			} else if j, dup := seen[pv.Issuer]; dup {
				v.errNode(pv.Meta.Pos("issuer"), prefix+".issuer", fmt.Sprintf("issuer %q is already providers[%d]: each issuer selects one provider", pv.Issuer, j))
			} else {
				seen[pv.Issuer] = i
			}
			specs = append(specs, pv)
			prefixes = append(prefixes, prefix)
		}
	} else {
		specs = []Provider{s.single()}
		prefixes = []string{""}
	}
	compiled := make([]*providerSpec, len(specs))
	for i := range specs {
		compiled[i] = v.provider(prefixes[i], &specs[i])
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
	if errs := *v.list(); len(errs) > 0 {
		return nil, errors.Join(errs...)
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
		leeway:   int64(s.Leeway.D()),
		optional: s.Optional,
		maxBytes: int(s.MaxTokenBytes),
		cookie:   s.Cookie,
		forwards: forwards,
		byIssuer: map[string]*provider{},
		cacheTTL: int64(s.CacheTTL.D()),
	}
	if s.CacheSize > 0 {
		p.cache = newTokenCache(s.CacheSize)
	}
	for i, ps := range compiled {
		pr := ps.provider
		for _, k := range ps.skipped {
			log.Warn("jwt: jwks_file key skipped", zap.String("route", route), zap.String("issuer", pr.issuer), zap.String("key", k))
		}
		if ps.jwksURL != "" {
			if err := pr.acquireRemote(env, ps, log, now); err != nil {
				_ = p.Close()
				return nil, v.nodeErr(specs[i].Meta.Pos("jwks_url"), config.JoinPath(prefixes[i], "jwks_url"), err.Error())
			}
			if ks, _ := pr.remote.keys(); ks == nil {
				env.Warning(config.Warnf(sec.File, specs[i].Meta.Pos("jwks_url"), config.JoinPath(sec.Path, config.JoinPath(prefixes[i], "jwks_url")),
					fmt.Sprintf("could not fetch the key set of provider %q (%s); its tokens are refused until a fetch succeeds", pr.label, pr.remote.lastError())))
			}
		}
		p.providers = append(p.providers, pr)
		for _, a := range pr.algs {
			if !slices.Contains(p.algs, a) {
				p.algs = append(p.algs, a)
			}
		}
		if pr.issuer == "" {
			p.anyIssuer = pr
		} else {
			p.byIssuer[pr.issuer] = pr
		}
	}
	p.parser = jwtlib.NewParser(
		jwtlib.WithValidMethods(p.algs),
		jwtlib.WithLeeway(s.Leeway.D()),
		jwtlib.WithExpirationRequired(),
		jwtlib.WithIssuedAt(),
		jwtlib.WithTimeFunc(now),
		// Spare bits in the last character of a part must be zero, so a
		// token has one spelling (RFC 7515 §2, RFC 4648 §3.5).
		jwtlib.WithStrictDecoding(),
	)
	m := metrics.ForRoute(route)
	for r := range p.rejects {
		p.rejects[r] = newRejection(reason(r), m)
	}
	return p, nil
}

// Close releases the providers' JWKS downloaders, if any.
func (p *Plugin) Close() error {
	var errs []error
	for _, pr := range p.providers {
		if pr.release != nil {
			errs = append(errs, pr.release())
		}
	}
	return errors.Join(errs...)
}

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

// validator collects the configuration errors of one section. For a
// provider, meta and prefix point at its entry of providers.
type validator struct {
	sec    config.Section
	meta   config.Meta
	prefix string
	errs   *[]error
	own    []error

	secret  []byte
	static  *keySet
	skipped []string
	// file is public_key_file or jwks_file as read (zero Path otherwise).
	file plugins.File
}

func (v *validator) list() *[]error {
	if v.errs == nil {
		v.errs = &v.own
	}
	return v.errs
}

// nodeErr returns an error at n, path being relative to the section.
func (v *validator) nodeErr(n *yaml.Node, path, msg string) error {
	return config.Errorf(v.sec.File, n, config.JoinPath(v.sec.Path, path), msg)
}

// errNode reports an error at n, path being relative to the section.
func (v *validator) errNode(n *yaml.Node, path, msg string) {
	*v.list() = append(*v.list(), v.nodeErr(n, path, msg))
}

func (v *validator) errf(field, format string, args ...any) {
	n := v.meta.Node
	if n == nil {
		n = v.sec.Node
	}
	if field != "" && v.meta.Has(field) {
		n = v.meta.Pos(field)
	}
	v.errNode(n, config.JoinPath(v.prefix, field), fmt.Sprintf(format, args...))
}

// errAt reports an error at a node below the section.
func (v *validator) errAt(n *yaml.Node, field, format string, args ...any) {
	if n == nil {
		v.errf(field, format, args...)
		return
	}
	v.errNode(n, config.JoinPath(v.prefix, field), fmt.Sprintf(format, args...))
}

func (v *validator) item(field string, i int) *yaml.Node {
	n := v.meta.Pos(field)
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

// providerSpec is a checked provider and what building it still needs.
type providerSpec struct {
	*provider
	jwksURL string
	refresh time.Duration
	refetch time.Duration
	skipped []string
}

// provider checks one provider's settings (prefix is "" for the
// single-provider form) and compiles what needs no network.
func (v *validator) provider(prefix string, pv *Provider) *providerSpec {
	pvv := validator{sec: v.sec, meta: pv.Meta, prefix: prefix, errs: v.list()}
	fams := pvv.algorithms(pv.Algorithms)
	pvv.keySource(pv, fams)
	if pv.Meta.Has("jwks_refresh") && pv.JWKSURL == "" {
		pvv.errf("jwks_refresh", "only applies with jwks_url")
	}
	if pv.Meta.Has("jwks_refetch_interval") {
		if pv.JWKSURL == "" {
			pvv.errf("jwks_refetch_interval", "only applies with jwks_url")
		} else if pv.JWKSRefetch.D() < minJWKSRefetch {
			pvv.errf("jwks_refetch_interval", "must be at least %s, got %s", minJWKSRefetch, pv.JWKSRefetch)
		}
	}
	pr := &provider{
		issuer: pv.Issuer,
		label:  pv.Issuer,
		algs:   slices.Clone(pv.Algorithms),
		secret: pvv.secret,
		static: pvv.static,
		file:   pvv.file,
	}
	if pr.label == "" {
		pr.label = config.RedactURL(pv.JWKSURL)
	}
	pr.audience = pvv.audience(pv.Audience)
	for i, t := range pv.Typ {
		if strings.TrimSpace(t) == "" {
			pvv.errAt(pvv.item("typ", i), config.IndexPath("typ", i), "must not be empty (typ: [] turns the check off)")
			continue
		}
		pr.typ = append(pr.typ, normType(t))
	}
	pr.checkTyp = len(pv.Typ) > 0
	pr.typClaim = pvv.claimName("typ_claim", pv.TypClaim, DefaultTypClaim)
	pr.roles = pvv.claimName("roles_claim", pv.RolesClaim, DefaultRolesClaim)
	if pv.ScopesClaim != "" || pv.Meta.Has("scopes_claim") {
		pr.scopes = []claimPath{pvv.claimName("scopes_claim", pv.ScopesClaim, defaultScopesClaim)}
	} else {
		pr.scopes = []claimPath{newClaimPath(defaultScopesClaim), newClaimPath(defaultScopesClaimNext)}
	}
	return &providerSpec{
		provider: pr, jwksURL: pv.JWKSURL, refresh: pv.JWKSRefresh.D(), refetch: pv.JWKSRefetch.D(), skipped: pvv.skipped,
	}
}

// audience reads audience: a string or a list of strings, any of which the
// token's aud must hold.
func (v *validator) audience(n *yaml.Node) []string {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			v.errAt(n, "audience", "must not be empty (leave audience out to not check it)")
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			v.errAt(n, "audience", "list at least one audience (leave audience out to not check it)")
			return nil
		}
		var out []string
		for i, it := range n.Content {
			if it.Kind != yaml.ScalarNode || it.Value == "" || it.Tag == "!!null" {
				v.errAt(it, config.IndexPath("audience", i), "expected a non-empty string")
				continue
			}
			out = append(out, it.Value)
		}
		return out
	}
	v.errAt(n, "audience", "expected a string or a list of strings")
	return nil
}

// claimName checks a claim name setting and compiles it.
func (v *validator) claimName(field, name, def string) claimPath {
	if name == "" {
		if v.meta.Has(field) {
			v.errf(field, "must not be empty (the default is %s)", def)
		}
		return newClaimPath(def)
	}
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		// An empty path segment can name no nested claim: only a claim
		// with exactly this name can match.
		return claimPath{name: name}
	}
	return newClaimPath(name)
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
		v.errf("algorithms", "cannot mix HMAC (HS*) and public-key algorithms: one provider has exactly one key source")
	}
	return fams
}

// keySource checks that exactly one key source is set and that it fits the
// algorithms, and loads it.
func (v *validator) keySource(s *Provider, fams map[algFamily]bool) {
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
		v.file = plugins.File{Path: s.PublicKeyFile, Sum: sha256.Sum256(data)}
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
		v.file = plugins.File{Path: s.JWKSFile, Sum: sha256.Sum256(data)}
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
		if s.JWKSRefresh.D() < s.JWKSRefetch.D() {
			v.errf("jwks_refresh", "must be at least jwks_refetch_interval (%s), got %s", s.JWKSRefetch, s.JWKSRefresh)
		}
	}
}

func (v *validator) secretKey(s *Provider) {
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
	var node *yaml.Node
	if v.meta.Has("forward_claims") {
		node = v.meta.Pos("forward_claims")
	}
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
		out = append(out, forward{claim: newClaimPath(c), header: fasthttp.AppendNormalizedHeaderKey(nil, h)})
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

// Files implements plugins.FileUser: a reload re-reads public_key_file and
// jwks_file when they changed, even when the configuration did not.
func (p *Plugin) Files() []plugins.File {
	var out []plugins.File
	for _, pr := range p.providers {
		if pr.file.Path != "" {
			out = append(out, pr.file)
		}
	}
	return out
}
