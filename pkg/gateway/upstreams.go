package gateway

import (
	"sync"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"go.uber.org/zap"
)

// upstreamPool keeps *proxy.Upstream values alive across reloads: a
// generation acquires an upstream by its settings' key, and an upstream
// whose settings did not change is handed to the next generation as is
// (connections and health state kept). The last release closes it.
type upstreamPool struct {
	mu     sync.Mutex
	logger *zap.Logger
	items  map[string]*pooledUpstream
}

type pooledUpstream struct {
	up   *proxy.Upstream
	refs int
}

func newUpstreamPool(logger *zap.Logger) *upstreamPool {
	return &upstreamPool{logger: logger, items: map[string]*pooledUpstream{}}
}

func proxyConfig(name string, u *config.Upstream) proxy.Config {
	pc := proxy.Config{
		Name:                name,
		Targets:             u.Targets,
		Balance:             u.Balance,
		ConnectTimeout:      u.ConnectTimeout.D(),
		Timeout:             u.Timeout.D(),
		MaxConnsPerTarget:   u.MaxConnsPerTarget,
		Retries:             u.Retries,
		MaxResponseBodySize: int(u.MaxResponseBodyBytes),
		EjectAfter:          u.EjectAfter,
		EjectFor:            u.EjectFor.D(),
	}
	if h := u.HealthCheck; h != nil {
		pc.HealthCheck = &proxy.HealthCheck{Path: h.Path, Interval: h.Interval.D(), Timeout: h.Timeout.D()}
	}
	return pc
}

// acquire returns the upstream for cfg, creating it when no live one has
// the same settings, and the func that releases this reference.
func (p *upstreamPool) acquire(cfg proxy.Config) (*proxy.Upstream, func(), error) {
	key := cfg.Key()
	p.mu.Lock()
	defer p.mu.Unlock()
	it, ok := p.items[key]
	if !ok {
		up, err := proxy.New(cfg, p.logger)
		if err != nil {
			return nil, nil, err
		}
		it = &pooledUpstream{up: up}
		p.items[key] = it
	}
	it.refs++
	var once sync.Once
	return it.up, func() { once.Do(func() { p.release(key, it) }) }, nil
}

func (p *upstreamPool) release(key string, it *pooledUpstream) {
	p.mu.Lock()
	it.refs--
	last := it.refs == 0
	if last {
		delete(p.items, key)
	}
	p.mu.Unlock()
	if last {
		_ = it.up.Close()
	}
}

func (p *upstreamPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items)
}
