package config

import "time"

// Auth configures the auth service, in-process (upstream builtin:auth) or in
// authd.
type Auth struct {
	// Secret is the HS256 signing secret: at least 32 bytes, and random
	// (auth.CheckSecret). Exactly one of Secret and PrivateKeyFile is set.
	Secret string `yaml:"secret"`
	// PrivateKeyFile is a PEM private key: RSA signs RS256, Ed25519 EdDSA.
	PrivateKeyFile string `yaml:"private_key_file"`
	// KeyID is the JWT "kid"; for a key pair it defaults to the key's
	// RFC 7638 thumbprint.
	KeyID             string   `yaml:"key_id"`
	Issuer            string   `yaml:"issuer"`
	Audience          string   `yaml:"audience"`
	AccessTTL         Duration `yaml:"access_ttl"`
	RefreshTTL        Duration `yaml:"refresh_ttl"`
	RefreshReuseGrace Duration `yaml:"refresh_reuse_grace"`
	BcryptCost        int      `yaml:"bcrypt_cost"`
	Lockout           Lockout  `yaml:"lockout"`
	// UsersFile is the embedded (bbolt) database used when there is no
	// redis: section.
	UsersFile string `yaml:"users_file"`
	Meta      Meta   `yaml:"-"`
}

// Lockout locks an account after MaxFailures failed logins within Window;
// the lock then lasts Window from the failure that set it.
type Lockout struct {
	MaxFailures int      `yaml:"max_failures"`
	Window      Duration `yaml:"window"`
	Meta        Meta     `yaml:"-"`
}

// Defaults of the auth: section (SPEC §6).
const (
	DefaultAuthIssuer        = "gatewayd-auth"
	DefaultAuthAudience      = "api"
	DefaultAccessTTL         = 15 * time.Minute
	DefaultRefreshTTL        = 168 * time.Hour
	DefaultRefreshReuseGrace = 5 * time.Second
	DefaultBcryptCost        = 12
	DefaultLockoutFailures   = 5
	DefaultLockoutWindow     = 15 * time.Minute
	DefaultUsersFile         = "data/users.db"
)

// ApplyDefaults fills every setting that was not written in the file. A
// setting written with a zero value is kept, so validation can reject it.
func (a *Auth) ApplyDefaults() {
	if !a.Meta.Has("issuer") && a.Issuer == "" {
		a.Issuer = DefaultAuthIssuer
	}
	if !a.Meta.Has("audience") && a.Audience == "" {
		a.Audience = DefaultAuthAudience
	}
	if !a.Meta.Has("access_ttl") && a.AccessTTL == 0 {
		a.AccessTTL = Duration(DefaultAccessTTL)
	}
	if !a.Meta.Has("refresh_ttl") && a.RefreshTTL == 0 {
		a.RefreshTTL = Duration(DefaultRefreshTTL)
	}
	if !a.Meta.Has("refresh_reuse_grace") && a.RefreshReuseGrace == 0 {
		a.RefreshReuseGrace = Duration(DefaultRefreshReuseGrace)
	}
	if !a.Meta.Has("bcrypt_cost") && a.BcryptCost == 0 {
		a.BcryptCost = DefaultBcryptCost
	}
	if !a.Lockout.Meta.Has("max_failures") && a.Lockout.MaxFailures == 0 {
		a.Lockout.MaxFailures = DefaultLockoutFailures
	}
	if !a.Lockout.Meta.Has("window") && a.Lockout.Window == 0 {
		a.Lockout.Window = Duration(DefaultLockoutWindow)
	}
	if !a.Meta.Has("users_file") && a.UsersFile == "" {
		a.UsersFile = DefaultUsersFile
	}
}
