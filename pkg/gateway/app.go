package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatewayd/gatewayd/pkg/authserver"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/store"
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
	logger  *zap.Logger
}

// Open builds everything cfg describes. Nothing listens yet.
func Open(cfg *config.Config, reg *plugins.Registry, logger *zap.Logger, version string) (*App, error) {
	a := &App{logger: logger}
	var err error
	if cfg.Redis != nil {
		a.Store, err = redis.New(cfg.Redis)
		if err != nil {
			return nil, err
		}
		logger.Info("store: redis", zap.Strings("addrs", cfg.Redis.Addrs), zap.Bool("client_side_cache", cfg.Redis.CacheEnabled()))
	} else {
		a.Store = memory.New()
		logger.Info("store: in-process (single instance; add a redis: section to share limits and revocations)")
	}
	var auth AuthHandler
	if cfg.Auth != nil {
		a.auth, err = authserver.Open(cfg.Auth, cfg.Redis, a.Store, logger.Named("auth"))
		if err != nil {
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

// Close releases the auth service and the store.
func (a *App) Close() {
	if a.auth != nil {
		_ = a.auth.Close()
	}
	if a.Store != nil {
		_ = a.Store.Close()
	}
}

// Check validates cfg completely, building every route and plugin against
// an in-process store, without opening listeners or connecting to Redis.
// It returns every error found.
func Check(cfg *config.Config, reg *plugins.Registry) error {
	var errs []error
	var auth AuthHandler
	if cfg.Auth != nil {
		if err := authserver.Validate(cfg.Auth, cfg.File); err != nil {
			errs = append(errs, config.Errors(err)...)
		}
		auth = checkOnlyAuth{}
	}
	st := memory.New()
	defer st.Close()
	d := &deps{
		registry:  reg,
		env:       plugins.Env{Store: st, Logger: zap.NewNop(), Resources: plugins.NewResources(), Now: time.Now},
		upstreams: newUpstreamPool(zap.NewNop()),
		auth:      auth,
	}
	gen, err := build(cfg, d)
	if err != nil {
		errs = append(errs, config.Errors(err)...)
	} else {
		gen.close()
	}
	return config.SortErrors(errors.Join(errs...))
}

// checkOnlyAuth stands in for the auth service while checking a file.
type checkOnlyAuth struct{ AuthHandler }

// ShutdownContext returns a context bounded by the configured
// shutdown_timeout.
func ShutdownContext(cfg *config.Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
}
