package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatewayd/gatewayd/pkg/authserver"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/bolt"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"go.uber.org/zap"
)

// App is a whole gatewayd process: the shared store, the in-process auth
// service (when configured) and the gateway.
type App struct {
	Gateway *Gateway
	Store   store.Store
	auth    *authserver.Server
	users   *bolt.Store
	logger  *zap.Logger
}

// Open builds everything cfg describes. Nothing listens yet.
func Open(cfg *config.Config, reg *plugins.Registry, logger *zap.Logger, version string) (*App, error) {
	a := &App{logger: logger}
	var err error
	if cfg.Redis != nil {
		rs, err := redis.New(cfg.Redis)
		if err != nil {
			return nil, err
		}
		// Every call, plugins' and the auth service's, goes through one
		// guard: deadline, in-flight cap and breaker.
		a.Store = redis.Guard(rs, cfg.Redis)
		logger.Info("store: redis", zap.String("topology", rs.Topology()), zap.Strings("addrs", config.RedactURLs(cfg.Redis.Addrs)),
			zap.Bool("client_side_cache", cfg.Redis.CacheEnabled()))
	} else {
		a.Store = memory.New()
		logger.Info("store: in-process (single instance; add a redis: section to share limits and revocations)")
	}
	var auth AuthHandler
	if cfg.Auth != nil {
		if err := a.openAuth(cfg, logger.Named("auth")); err != nil {
			a.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
		auth = a.auth
	}
	a.Gateway, err = New(cfg, Options{Registry: reg, Logger: logger, Store: a.Store, Auth: auth, Version: version})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openAuth starts the in-process auth service: users and sessions in Redis
// when the gateway uses Redis, else in the embedded file users_file.
func (a *App) openAuth(cfg *config.Config, logger *zap.Logger) error {
	var users store.AuthStore
	if gs, ok := a.Store.(*store.Guarded); ok {
		users = gs.Auth()
	} else {
		path := cfg.Auth.UsersFile
		if path == "" {
			path = DefaultUsersFile
		}
		b, err := bolt.Open(path)
		if err != nil {
			return err
		}
		a.users = b
		users = b
	}
	srv, err := authserver.New(cfg.Auth, users, a.Store, logger)
	if err != nil {
		return err
	}
	a.auth = srv
	return nil
}

// DefaultUsersFile is where the embedded user store lives when auth.users_file
// is not set.
const DefaultUsersFile = "data/users.db"

// Close releases the auth service and the stores.
func (a *App) Close() {
	if a.auth != nil {
		_ = a.auth.Close()
	}
	if a.users != nil {
		_ = a.users.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
}

// Check validates cfg completely, building every route and plugin against
// an in-process store, without opening listeners or connecting to Redis.
// parseErr is what config.Parse returned for cfg: Check adds the errors the
// build finds that parseErr does not already report, and returns them all.
func Check(cfg *config.Config, parseErr error, reg *plugins.Registry) error {
	_, err := CheckWarnings(cfg, parseErr, reg)
	return err
}

// CheckWarnings is Check that also returns the configuration warnings the
// build found, in file order. Warnings do not make a file invalid; they are
// returned whether or not there are errors.
func CheckWarnings(cfg *config.Config, parseErr error, reg *plugins.Registry) ([]*config.Warning, error) {
	if cfg == nil {
		return nil, parseErr
	}
	var warnings []*config.Warning
	var errs []error
	var auth AuthHandler
	if cfg.Auth != nil {
		if err := authserver.Validate(cfg.Auth, cfg.File); err != nil {
			errs = append(errs, config.Errors(err)...)
		}
		auth = checkOnlyAuth{}
	}
	cd := checkDeps(reg)
	defer cd.close()
	cd.deps.auth = auth
	cd.deps.env.Warn = func(w *config.Warning) { warnings = append(warnings, w) }
	d := cd.deps
	gen, err := build(cfg, d)
	if err != nil {
		errs = append(errs, config.Errors(err)...)
	} else {
		gen.close()
	}
	return config.SortWarnings(warnings), config.Merge(parseErr, errors.Join(errs...))
}

// checkEnv is a throwaway build environment: an in-process store and no
// network side effects beyond creating (idle) upstream clients.
type checkEnv struct {
	deps  *deps
	store store.Store
}

func checkDeps(reg *plugins.Registry) checkEnv {
	st := memory.New()
	return checkEnv{store: st, deps: &deps{
		registry:  reg,
		env:       plugins.Env{Store: st, Logger: zap.NewNop(), Resources: plugins.NewResources(), Now: time.Now},
		upstreams: newUpstreamPool(zap.NewNop()),
	}}
}

func (c checkEnv) close() { _ = c.store.Close() }

// checkOnlyAuth stands in for the auth service while checking a file.
type checkOnlyAuth struct{ AuthHandler }
