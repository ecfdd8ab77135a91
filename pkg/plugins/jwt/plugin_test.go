package jwt

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
)

func TestBuildErrors(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	rsaPEM := writePEM(t, dir, "rsa.pem", &k.rsa.PublicKey)
	ecPEM := writePEM(t, dir, "ec.pem", &k.ec256.PublicKey)
	weakPEM := writePEM(t, dir, "weak.pem", &k.rsaWeak.PublicKey)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec256)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := writeFile(t, dir, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	emptyJWKS := writeFile(t, dir, "empty.json", []byte(`{"keys":[]}`))
	encJWKS := writeFile(t, dir, "enc.json", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","x":"`+b64([]byte(k.ed.Public().(ed25519.PublicKey)))+`"}]}`))
	edJWKS := writeFile(t, dir, "ed.json", jwksDoc(t, []string{"e1"}, []any{k.ed.Public()}))
	tests := []struct {
		name     string
		giveYAML string
		wantErrs []string
	}{
		{
			name:     "bare",
			wantErrs: []string{"gateway.yaml: routes[0].plugins[1].jwt: one of secret, public_key_file, jwks_file or jwks_url is required"},
		},
		{
			name:     "unknown field",
			giveYAML: "secret: " + testSecret + "\nleeways: 5s",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.leeways: unknown field "leeways" (did you mean "leeway"?)`},
		},
		{
			name:     "alg none",
			giveYAML: "secret: " + testSecret + "\nalgorithms: [HS256, none]",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.algorithms[1]: "none" is never accepted: unsigned tokens would let anyone in`},
		},
		{
			name:     "unknown alg",
			giveYAML: "secret: " + testSecret + "\nalgorithms:\n  - HS257",
			wantErrs: []string{`gateway.yaml:3: routes[0].plugins[1].jwt.algorithms[0]: unknown algorithm "HS257" (expected one of ` + algorithmNames + `)`},
		},
		{
			name:     "no algorithms",
			giveYAML: "secret: " + testSecret + "\nalgorithms: []",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.algorithms: at least one algorithm is required (e.g. [HS256])`},
		},
		{
			name:     "mixed families",
			giveYAML: "secret: " + testSecret + "\nalgorithms: [HS256, RS256]",
			wantErrs: []string{
				`gateway.yaml:2: routes[0].plugins[1].jwt.algorithms: cannot mix HMAC (HS*) and public-key algorithms: one provider has exactly one key source`,
				`gateway.yaml:2: routes[0].plugins[1].jwt.algorithms[1]: RS256 needs public_key_file, jwks_file or jwks_url, not secret`,
			},
		},
		{
			name:     "short secret",
			giveYAML: "secret: too-short-secret",
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.secret: must be at least 32 bytes for HS256, got 16: a shorter HMAC key can be brute-forced offline from any token it signed (RFC 7518 §3.2 requires a key as long as the hash output); generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "short secret for HS512",
			giveYAML: "algorithms: [HS256, HS512]\nsecret: " + testSecret + testSecret[:16],
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.secret: must be at least 64 bytes for HS512, got 48: a shorter HMAC key can be brute-forced offline from any token it signed (RFC 7518 §3.2 requires a key as long as the hash output); generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "placeholder secret",
			giveYAML: "secret: REPLACE_ME_REPLACE_ME_REPLACE_ME",
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.secret: looks like a placeholder, not a secret (it contains "replaceme"): generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "one repeated character",
			giveYAML: "secret: " + strings.Repeat("A", 40),
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.secret: is a repeated pattern (one character repeated): generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "repeated secret for HS512",
			giveYAML: "algorithms: [HS512]\nsecret: " + testSecret + testSecret,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.secret: is a repeated pattern (32 characters repeated): generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "low entropy",
			giveYAML: "secret: " + strings.Repeat("q", 39) + "Z",
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.secret: has too little entropy (about 9 bits estimated, want at least 128): generate one with: head -c 48 /dev/urandom | base64`},
		},
		{
			name:     "two key sources",
			giveYAML: "secret: " + testSecret + "\njwks_url: https://idp.example.com/jwks.json",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_url: only one key source may be set, got secret and jwks_url`},
		},
		{
			name:     "RS256 with a secret",
			giveYAML: "secret: " + testSecret + "\nalgorithms: [RS256]",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.algorithms[0]: RS256 needs public_key_file, jwks_file or jwks_url, not secret`},
		},
		{
			name:     "default HS256 with a public key",
			giveYAML: "public_key_file: " + rsaPEM,
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.public_key_file: algorithms defaults to [HS256], which needs secret: list the public-key algorithms the issuer uses (e.g. algorithms: [RS256])`},
		},
		{
			name:     "HS256 with a JWKS URL",
			giveYAML: "algorithms: [RS256, HS256]\njwks_url: https://idp.example.com/jwks.json",
			wantErrs: []string{
				`gateway.yaml:1: routes[0].plugins[1].jwt.algorithms: cannot mix HMAC (HS*) and public-key algorithms: one provider has exactly one key source`,
				`gateway.yaml:1: routes[0].plugins[1].jwt.algorithms[1]: HS256 needs secret, not jwks_url`,
			},
		},
		{
			name:     "missing key file",
			giveYAML: "algorithms: [RS256]\npublic_key_file: " + dir + "/nope.pem",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.public_key_file: cannot read the key: open ` + dir + `/nope.pem: no such file or directory`},
		},
		{
			name:     "private key file",
			giveYAML: "algorithms: [ES256]\npublic_key_file: " + privPEM,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.public_key_file: not a usable public key: holds a private key; give the public key only (openssl pkey -in KEY -pubout)`},
		},
		{
			name:     "not PEM",
			giveYAML: "algorithms: [ES256]\npublic_key_file: " + emptyJWKS,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.public_key_file: not a usable public key: no PEM block found`},
		},
		{
			name:     "curve mismatch",
			giveYAML: "algorithms: [ES256, ES384]\npublic_key_file: " + ecPEM,
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.algorithms[1]: ES384 does not fit public_key_file, which holds an ECDSA P-256 key (use ES256)`},
		},
		{
			name:     "RSA alg on EC key",
			giveYAML: "algorithms: [RS256]\npublic_key_file: " + ecPEM,
			wantErrs: []string{`gateway.yaml:1: routes[0].plugins[1].jwt.algorithms[0]: RS256 does not fit public_key_file, which holds an ECDSA P-256 key (use ES256)`},
		},
		{
			name:     "weak RSA key",
			giveYAML: "algorithms: [RS256]\npublic_key_file: " + weakPEM,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.public_key_file: not a usable public key: RSA key has 1024 bits, at least 2048 are required`},
		},
		{
			name:     "empty JWKS",
			giveYAML: "algorithms: [RS256]\njwks_file: " + emptyJWKS,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_file: no usable signing key: the key set is empty`},
		},
		{
			name:     "JWKS of encryption keys",
			giveYAML: "algorithms: [EdDSA]\njwks_file: " + encJWKS,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_file: no usable signing key (keys[0] (kid ""): use "enc" is not sig)`},
		},
		{
			name:     "JWKS without a fitting key",
			giveYAML: "algorithms: [RS256]\njwks_file: " + edJWKS,
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_file: no key in the set fits algorithms [RS256]`},
		},
		{
			name:     "jwks_url scheme",
			giveYAML: "algorithms: [RS256]\njwks_url: ftp://idp.example.com/jwks.json",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_url: expected an http:// or https:// URL, got "ftp://idp.example.com/jwks.json"`},
		},
		{
			name:     "jwks_refresh too short",
			giveYAML: "algorithms: [RS256]\njwks_url: https://idp.example.com/jwks.json\njwks_refresh: 1s",
			wantErrs: []string{`gateway.yaml:3: routes[0].plugins[1].jwt.jwks_refresh: must be at least jwks_refetch_interval (10s), got 1s`},
		},
		{
			name:     "jwks_refresh without jwks_url",
			giveYAML: "secret: " + testSecret + "\njwks_refresh: 1m",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.jwks_refresh: only applies with jwks_url`},
		},
		{
			name:     "bad duration",
			giveYAML: "secret: " + testSecret + "\nleeway: 30",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.leeway: duration "30" needs a unit, e.g. 30s`},
		},
		{
			name:     "tiny max_token_bytes",
			giveYAML: "secret: " + testSecret + "\nmax_token_bytes: 64",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.max_token_bytes: must be at least 128 bytes, got 64`},
		},
		{
			name:     "cookie name",
			giveYAML: "secret: " + testSecret + "\ncookie: \"my session\"",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.cookie: "my session" is not a valid cookie name`},
		},
		{
			name:     "cache settings",
			giveYAML: "secret: " + testSecret + "\ncache_size: -1\ncache_ttl: 0",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.cache_size: must not be negative (0 turns the cache off), got -1`},
		},
		{
			name:     "cache ttl zero",
			giveYAML: "secret: " + testSecret + "\ncache_ttl: 0",
			wantErrs: []string{`gateway.yaml:2: routes[0].plugins[1].jwt.cache_ttl: must be positive (set cache_size: 0 to turn the cache off)`},
		},
		{
			name: "forward_claims mistakes",
			giveYAML: "secret: " + testSecret + "\nforward_claims:\n" +
				"  sub: Authorization\n  role: \"X User\"\n  email: X-User\n  name: x-user\n",
			wantErrs: []string{
				`gateway.yaml:6: routes[0].plugins[1].jwt.forward_claims.name: header x-user already carries claim "email"`,
				`gateway.yaml:4: routes[0].plugins[1].jwt.forward_claims.role: "X User" is not a valid header name`,
				`gateway.yaml:3: routes[0].plugins[1].jwt.forward_claims.sub: header Authorization cannot carry a claim`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.giveYAML), &plugins.Env{Route: "config-test"})
			if err == nil {
				t.Fatalf("Build succeeded, want errors %q", tt.wantErrs)
			}
			var got []string
			for _, e := range config.Errors(err) {
				if _, ok := e.(*config.Error); !ok {
					t.Errorf("error %q is a %T, want *config.Error", e, e)
				}
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.wantErrs, "\n     "))
			}
		})
	}
}

func TestBuildAccepts(t *testing.T) {
	k := getKeys(t)
	dir := t.TempDir()
	tests := []struct {
		name     string
		giveYAML string
	}{
		{name: "secret", giveYAML: "secret: " + testSecret},
		{name: "HS512", giveYAML: "algorithms: [HS512, HS384]\nsecret: " + testSecret512},
		{name: "RSA PEM", giveYAML: "algorithms: [RS256, PS256]\npublic_key_file: " + writePEM(t, dir, "rsa.pem", &k.rsa.PublicKey)},
		{name: "EC PEM", giveYAML: "algorithms: [ES384]\npublic_key_file: " + writePEM(t, dir, "ec.pem", &k.ec384.PublicKey)},
		{name: "Ed25519 PEM", giveYAML: "algorithms: [EdDSA]\npublic_key_file: " + writePEM(t, dir, "ed.pem", k.ed.Public())},
		{name: "JWKS file", giveYAML: "algorithms: [RS256, EdDSA]\njwks_file: " + writeFile(t, dir, "jwks.json",
			jwksDoc(t, []string{"r1", "e1"}, []any{&k.rsa.PublicKey, k.ed.Public()}))},
		{name: "full", giveYAML: "secret: " + testSecret + "\nissuer: gatewayd-auth\naudience: api\nleeway: 0\ncookie: session\n" +
			"optional: true\nmax_token_bytes: 4KiB\ncache_size: 0\nforward_claims: {sub: X-User-ID, role: x-user-role}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustBuild(t, tt.giveYAML, &plugins.Env{Route: "config-test"})
		})
	}
}

func TestClaimHeaders(t *testing.T) {
	p := mustBuild(t, "secret: "+testSecret+"\nforward_claims: {sub: x-user-id, role: X-USER-ROLE, tenant: X-Tenant}", nil)
	want := []string{"X-User-Role", "X-User-Id", "X-Tenant"}
	if got := p.ClaimHeaders(); !slices.Equal(got, want) {
		t.Errorf("ClaimHeaders() = %q, want %q", got, want)
	}
}

func TestAuthenticates(t *testing.T) {
	if p := mustBuild(t, "secret: "+testSecret, nil); !p.Authenticates() {
		t.Error("a required token does not count as authentication")
	}
	if p := mustBuild(t, "secret: "+testSecret+"\noptional: true", nil); p.Authenticates() {
		t.Error("an optional token counts as authentication")
	}
}

// TestReadmeListsSettings checks every YAML key is documented.
func TestReadmeListsSettings(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.FieldNames(Settings{}) {
		if !strings.Contains(string(data), "`"+k+"`") {
			t.Errorf("README.md does not document %s", k)
		}
	}
}
