package authserver

import (
	"errors"
	"strconv"
	"time"

	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"golang.org/x/crypto/bcrypt"
)

// MaxReuseGrace caps refresh_reuse_grace: a longer grace would let a stolen
// refresh token race its owner undetected for that long.
const MaxReuseGrace = time.Minute

// Validate applies the auth: section's defaults to cfg and checks it,
// loading the private key when one is configured. Mistakes are returned
// joined, each a *config.Error at its field's line in file.
func Validate(cfg *config.Auth, file string) error {
	_, err := compile(cfg, file)
	return err
}

// compile validates cfg (applying defaults) and returns its signing key.
func compile(cfg *config.Auth, file string) (*auth.Key, error) {
	cfg.ApplyDefaults()
	var errs []error
	// at reports msg at field's value, or at the enclosing mapping when the
	// field was not written (the auth: node when lockout: is absent too).
	at := func(m config.Meta, base, field, msg string) {
		n := cfg.Meta.Node
		if m.Node != nil {
			n = m.Pos(field)
		}
		errs = append(errs, config.Errorf(file, n, config.JoinPath(base, field), msg))
	}
	const base = "auth"
	m := cfg.Meta

	var key *auth.Key
	switch {
	case cfg.Secret != "" && cfg.PrivateKeyFile != "":
		at(m, base, "private_key_file", "set either secret (HS256) or private_key_file (RS256/EdDSA), not both")
	case cfg.Secret == "" && cfg.PrivateKeyFile == "" && !m.Has("secret"):
		errs = append(errs, config.Errorf(file, m.Node, base,
			"set secret (HS256, at least 32 bytes) or private_key_file (an RSA or Ed25519 PEM key)"))
	case cfg.PrivateKeyFile == "":
		k, err := auth.NewHMACKey([]byte(cfg.Secret), cfg.KeyID)
		switch {
		case err != nil:
			at(m, base, "secret", "must be at least "+strconv.Itoa(auth.MinSecretBytes)+" bytes, got "+strconv.Itoa(len(cfg.Secret))+": "+auth.SecretAdvice)
		case auth.CheckSecret([]byte(cfg.Secret)) != nil:
			at(m, base, "secret", auth.CheckSecret([]byte(cfg.Secret)).Error()+": "+auth.SecretAdvice)
		default:
			key = k
		}
	default:
		k, err := auth.LoadPrivateKeyFile(cfg.PrivateKeyFile, cfg.KeyID)
		if err != nil {
			at(m, base, "private_key_file", "cannot use "+strconv.Quote(cfg.PrivateKeyFile)+": "+err.Error())
		}
		key = k
	}
	if cfg.Issuer == "" {
		at(m, base, "issuer", "must not be empty")
	}
	if cfg.Audience == "" {
		at(m, base, "audience", "must not be empty")
	}
	if cfg.AccessTTL.D() < time.Second {
		at(m, base, "access_ttl", "must be at least 1s, got "+cfg.AccessTTL.String())
	}
	if cfg.RefreshTTL.D() < cfg.AccessTTL.D() {
		at(m, base, "refresh_ttl", "must be at least access_ttl ("+cfg.AccessTTL.String()+"), got "+cfg.RefreshTTL.String())
	}
	if cfg.RefreshReuseGrace.D() > MaxReuseGrace {
		at(m, base, "refresh_reuse_grace", "must be at most "+MaxReuseGrace.String()+", got "+cfg.RefreshReuseGrace.String())
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		at(m, base, "bcrypt_cost", "must be between "+strconv.Itoa(bcrypt.MinCost)+" and "+
			strconv.Itoa(bcrypt.MaxCost)+", got "+strconv.Itoa(cfg.BcryptCost))
	}
	lb := config.JoinPath(base, "lockout")
	if cfg.Lockout.MaxFailures < 1 {
		at(cfg.Lockout.Meta, lb, "max_failures", "must be at least 1, got "+strconv.Itoa(cfg.Lockout.MaxFailures))
	}
	if cfg.Lockout.Window.D() <= 0 {
		at(cfg.Lockout.Meta, lb, "window", "must be a positive duration, got "+cfg.Lockout.Window.String())
	}
	if cfg.UsersFile == "" {
		at(m, base, "users_file", "must not be empty")
	}
	if len(errs) > 0 {
		return nil, config.SortErrors(errors.Join(errs...))
	}
	return key, nil
}
