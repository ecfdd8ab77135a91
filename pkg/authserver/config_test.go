package authserver

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
)

type authFile struct {
	Auth *config.Auth `yaml:"auth"`
}

func parseAuth(t *testing.T, file, src string) *config.Auth {
	t.Helper()
	root, err := config.ParseNode(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var f authFile
	if err := config.DecodeStrict(file, root, "", &f); err != nil {
		t.Fatal(err)
	}
	return f.Auth
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		give string
		want string
	}{
		{
			name: "no key",
			give: "auth:\n  issuer: me\n",
			want: "a.yaml:2: auth: set secret (HS256, at least 32 bytes) or private_key_file (an RSA or Ed25519 PEM key)",
		},
		{
			name: "short secret",
			give: "auth:\n  issuer: me\n  secret: short\n",
			want: "a.yaml:3: auth.secret: must be at least 32 bytes, got 5: generate one with: head -c 48 /dev/urandom | base64",
		},
		{
			name: "placeholder secret",
			give: "auth:\n  secret: REPLACE_ME_REPLACE_ME_REPLACE_ME\n",
			want: `a.yaml:2: auth.secret: looks like a placeholder, not a secret (it contains "replaceme"): generate one with: head -c 48 /dev/urandom | base64`,
		},
		{
			name: "one repeated character",
			give: "auth:\n  secret: " + strings.Repeat("A", 40) + "\n",
			want: "a.yaml:2: auth.secret: is a repeated pattern (one character repeated): generate one with: head -c 48 /dev/urandom | base64",
		},
		{
			name: "low entropy secret",
			give: "auth:\n  secret: \"" + strings.Repeat("ab", 10) + "ba" + strings.Repeat("ab", 10) + "\"\n",
			want: "a.yaml:2: auth.secret: has too little entropy (about 56 bits estimated, want at least 128): generate one with: head -c 48 /dev/urandom | base64",
		},
		{
			name: "secret and key file",
			give: "auth:\n  secret: " + testSecret + "\n  private_key_file: k.pem\n",
			want: "a.yaml:3: auth.private_key_file: set either secret (HS256) or private_key_file (RS256/EdDSA), not both",
		},
		{
			name: "key file not PEM",
			give: "auth:\n  private_key_file: " + notPEM + "\n",
			want: "a.yaml:2: auth.private_key_file: cannot use \"" + notPEM + "\": no PEM block found",
		},
		{
			name: "every value wrong",
			give: "auth:\n  secret: " + testSecret + "\n" +
				"  issuer: \"\"\n" +
				"  access_ttl: 0\n" +
				"  refresh_reuse_grace: 2m\n" +
				"  bcrypt_cost: 3\n" +
				"  lockout: { max_failures: 0, window: 0 }\n" +
				"  users_file: \"\"\n",
			want: strings.Join([]string{
				"a.yaml:3: auth.issuer: must not be empty",
				"a.yaml:4: auth.access_ttl: must be at least 1s, got 0s",
				"a.yaml:5: auth.refresh_reuse_grace: must be at most 1m0s, got 2m0s",
				"a.yaml:6: auth.bcrypt_cost: must be between 4 and 31, got 3",
				"a.yaml:7: auth.lockout.max_failures: must be at least 1, got 0",
				"a.yaml:7: auth.lockout.window: must be a positive duration, got 0s",
				"a.yaml:8: auth.users_file: must not be empty",
			}, "\n"),
		},
		{
			name: "refresh shorter than access",
			give: "auth:\n  secret: " + testSecret + "\n  access_ttl: 1h\n  refresh_ttl: 30m\n",
			want: "a.yaml:4: auth.refresh_ttl: must be at least access_ttl (1h0m0s), got 30m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(parseAuth(t, "a.yaml", tt.give), "a.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Fatalf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			for _, e := range config.Errors(err) {
				if _, ok := e.(*config.Error); !ok {
					t.Fatalf("%T is not a *config.Error", e)
				}
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	cfg := parseAuth(t, "a.yaml", "auth:\n  secret: "+testSecret+"\n")
	if err := Validate(cfg, "a.yaml"); err != nil {
		t.Fatal(err)
	}
	want := config.Auth{
		Secret: testSecret, Issuer: "gatewayd-auth", Audience: "api",
		AccessTTL: config.Duration(15 * time.Minute), RefreshTTL: config.Duration(168 * time.Hour),
		RefreshReuseGrace: config.Duration(5 * time.Second), BcryptCost: 12,
		Lockout:   config.Lockout{MaxFailures: 5, Window: config.Duration(15 * time.Minute)},
		UsersFile: "data/users.db",
	}
	got := *cfg
	got.Meta, got.Lockout.Meta = config.Meta{}, config.Meta{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	b := boltBackend()
	users, rev := b.open(t)
	if _, err := New(&config.Auth{Secret: "short"}, users, rev, nil); err == nil {
		t.Fatal("New accepted a short secret")
	}
	if _, err := New(testConfig(), nil, rev, nil); err == nil {
		t.Fatal("New accepted a nil user store")
	}
}
