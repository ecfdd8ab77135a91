package gateway

import (
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/proxy"
	"go.uber.org/zap"
)

// upstreamPool keeps *proxy.Upstream values alive across reloads: a
// generation acquires an upstream by its settings, and an upstream whose
// settings did not change is handed to the next generation as is. An
// upstream whose targets and connection settings did not change but whose
// policy did (weights, balance, retries, retry_on, retry_budget) is derived
// from the live one, so its connections and health state carry over. The
// last release of a target set closes it.
type upstreamPool struct {
	mu     sync.Mutex
	logger *zap.Logger
	items  map[string]*pooledUpstream // by proxy.Config.PoolKey
}

type pooledUpstream struct {
	base     *proxy.Upstream
	refs     int
	policies map[string]*pooledPolicy // by proxy.Config.Key
}

type pooledPolicy struct {
	up   *proxy.Upstream
	refs int
}

func newUpstreamPool(logger *zap.Logger) *upstreamPool {
	return &upstreamPool{logger: logger, items: map[string]*pooledUpstream{}}
}

func proxyConfig(name string, u *config.Upstream) proxy.Config {
	pc := proxy.Config{
		Name:                name,
		Targets:             config.URLs(u.Targets),
		Weights:             make([]int, len(u.Targets)),
		RetryOn:             u.RetryOn,
		Balance:             u.Balance,
		ConnectTimeout:      u.ConnectTimeout.D(),
		Timeout:             u.Timeout.D(),
		MaxConnsPerTarget:   u.MaxConnsPerTarget,
		Retries:             u.Retries,
		MaxResponseBodySize: int(u.MaxResponseBodyBytes),
		EjectAfter:          u.EjectAfter,
		EjectFor:            u.EjectFor.D(),
	}
	for i, t := range u.Targets {
		pc.Weights[i] = t.Weight
	}
	if b := u.RetryBudget; b != nil {
		pc.RetryBudget = &proxy.RetryBudget{Ratio: b.Ratio, MinPerSecond: b.MinPerSecond, Window: b.Window.D()}
	}
	if h := u.HealthCheck; h != nil {
		pc.HealthCheck = &proxy.HealthCheck{Path: h.Path, Interval: h.Interval.D(), Timeout: h.Timeout.D()}
	}
	if t := u.TLS; t != nil {
		pc.TLS = &proxy.TLS{
			CA:                 t.CA,
			Cert:               t.Cert,
			Key:                t.Key,
			ServerName:         t.ServerName,
			MinVersion:         t.MinVersion,
			InsecureSkipVerify: t.InsecureSkipVerify,
		}
	}
	return pc
}

// checkUpstreamTLS checks the content of the certificate and key files of
// upstream name's tls: section (the loader read them) and reports its
// warnings. It returns the errors, positioned at the file's key.
func checkUpstreamTLS(cfg *config.Config, name string, u *config.Upstream, warn func(*config.Warning)) []error {
	t := u.TLS
	if t == nil {
		return nil
	}
	path := "upstreams." + name + ".tls"
	sec := config.Section{Node: t.Meta.Node, File: cfg.File, Path: path}
	var errs []error
	if t.CAFile != "" {
		if _, err := proxy.ParseCertPool(t.CA); err != nil {
			errs = append(errs, sec.Errorf("ca_file", "%s: %v", t.CAFile, err))
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		pair, err := proxy.ParseKeyPair(t.Cert, t.Key)
		switch {
		case err != nil:
			errs = append(errs, sec.Errorf("cert_file", "%s with key_file %s: %v", t.CertFile, t.KeyFile, err))
		case pair.Leaf != nil && time.Now().After(pair.Leaf.NotAfter):
			warn(sec.Warnf("cert_file", "the client certificate %s expired at %s: targets that check it refuse the connection",
				t.CertFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	if t.InsecureSkipVerify {
		warn(sec.Warnf("insecure_skip_verify", "the certificates of upstream %q are not verified: anyone on the network path "+
			"can impersonate its targets and read the traffic; trust their CA with ca_file instead", name))
	}
	return errs
}

// acquire returns the upstream for cfg, creating it (or deriving it from a
// live one over the same targets) when no live one has the same settings,
// and the func that releases this reference.
func (p *upstreamPool) acquire(cfg proxy.Config) (*proxy.Upstream, func(), error) {
	poolKey, key := cfg.PoolKey(), cfg.Key()
	p.mu.Lock()
	defer p.mu.Unlock()
	it, ok := p.items[poolKey]
	if !ok {
		up, err := proxy.New(cfg, p.logger)
		if err != nil {
			return nil, nil, err
		}
		it = &pooledUpstream{base: up, policies: map[string]*pooledPolicy{key: {up: up}}}
		p.items[poolKey] = it
	}
	pol, ok := it.policies[key]
	if !ok {
		up, err := it.base.Derive(cfg)
		if err != nil {
			return nil, nil, err
		}
		pol = &pooledPolicy{up: up}
		it.policies[key] = pol
	}
	it.refs++
	pol.refs++
	var once sync.Once
	return pol.up, func() { once.Do(func() { p.release(poolKey, key, it) }) }, nil
}

func (p *upstreamPool) release(poolKey, key string, it *pooledUpstream) {
	p.mu.Lock()
	if pol := it.policies[key]; pol != nil {
		pol.refs--
		if pol.refs == 0 {
			delete(it.policies, key)
		}
	}
	it.refs--
	last := it.refs == 0
	if last {
		delete(p.items, poolKey)
	}
	p.mu.Unlock()
	if last {
		_ = it.base.Close()
	}
}

func (p *upstreamPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items)
}
