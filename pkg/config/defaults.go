package config

import "time"

// Defaults of the top-level sections, applied to fields left unset.
const (
	DefaultListen                = ":8080"
	DefaultAdminListen           = "127.0.0.1:9901"
	DefaultReadTimeout           = 10 * time.Second
	DefaultWriteTimeout          = 30 * time.Second
	DefaultIdleTimeout           = 60 * time.Second
	DefaultMaxRequestHeaderBytes = 8 << 10
	DefaultMaxRequestBodyBytes   = 10 << 20
	DefaultHeaderTimeout         = 5 * time.Second
	DefaultStreamBodyThreshold   = 64 << 10
	DefaultMaxConnectionsPerIP   = 256
	DefaultShutdownTimeout       = 30 * time.Second
	DefaultConnectTimeout        = time.Second
	DefaultUpstreamTimeout       = 15 * time.Second
	DefaultMaxConnsPerTarget     = 1024
	DefaultHealthInterval        = 5 * time.Second
	DefaultHealthTimeout         = 2 * time.Second
	DefaultEjectAfter            = 3
	DefaultEjectFor              = 10 * time.Second
	DefaultBalance               = "round_robin"
	DefaultRetryBudgetRatio      = 0.2
	DefaultRetryBudgetWindow     = 10 * time.Second
	// DefaultRetryBudgetMinPerSecond is the default retry_budget.min_per_second.
	DefaultRetryBudgetMinPerSecond = 10
	DefaultWebSocketIdleTimeout    = 5 * time.Minute
	DefaultServiceName             = "gatewayd"
	DefaultSampleRatio             = 1.0
)

// Bounds of the runtime: section.
const (
	// MinGCPercent and MaxGCPercent bound runtime.gc_percent; below 10
	// the collector would run almost without pause.
	MinGCPercent = 10
	MaxGCPercent = 1000
	// DefaultGCPercent is the collector's GOGC when neither
	// runtime.gc_percent nor the GOGC environment variable sets it. The
	// request path does not allocate, so collections are rare and cheap
	// (about one a second on Redis at 20 000 requests a second, twice as
	// many at 25 as at 50), and a quarter of the live heap as headroom
	// holds 1.2–2.5 MiB less than half of it at 256 connections, about
	// 6 MiB less than the runtime's default of 100 again (bench/README.md,
	// "RSS at 256 connections").
	DefaultGCPercent = 25
	// MinMemoryLimit is the smallest runtime.memory_limit: less than the
	// gateway's own footprint would only make the collector run flat out.
	MinMemoryLimit = 16 << 20
)

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func (c *Config) applyDefaults() {
	if c.Version == 0 && !c.Meta.Has("version") {
		c.Version = 1
	}
	setStr(&c.Listen, DefaultListen)
	setStr(&c.Admin.Listen, DefaultAdminListen)
	if c.TLS != nil {
		c.TLS.applyDefaults()
	}
	s := &c.Server
	setDur(&s.ReadTimeout, DefaultReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.ShutdownTimeout, DefaultShutdownTimeout)
	if s.MaxRequestHeaderBytes == 0 {
		s.MaxRequestHeaderBytes = DefaultMaxRequestHeaderBytes
	}
	if s.MaxRequestBodyBytes == 0 {
		s.MaxRequestBodyBytes = DefaultMaxRequestBodyBytes
	}
	setDur(&s.HeaderTimeout, DefaultHeaderTimeout)
	if s.StreamRequestBodyThreshold == 0 && !s.Meta.Has("stream_request_body_threshold") {
		s.StreamRequestBodyThreshold = DefaultStreamBodyThreshold
	}
	if s.MaxConnectionsPerIP == 0 && !s.Meta.Has("max_connections_per_ip") {
		s.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	setStr(&c.Log.Level, "info")
	setStr(&c.Log.Format, "json")
	if c.Log.AccessLog == nil {
		t := true
		c.Log.AccessLog = &t
	}
	if t := c.Tracing; t != nil {
		setStr(&t.ServiceName, DefaultServiceName)
		if !t.Meta.Has("sample_ratio") {
			t.SampleRatio = DefaultSampleRatio
		}
	}
	for _, r := range c.Routes {
		if r != nil && r.WebSocket {
			setDur(&r.WebSocketIdleTimeout, DefaultWebSocketIdleTimeout)
		}
	}
	for _, u := range c.Upstreams {
		if u == nil {
			continue
		}
		setStr(&u.Balance, DefaultBalance)
		setDur(&u.ConnectTimeout, DefaultConnectTimeout)
		setDur(&u.Timeout, DefaultUpstreamTimeout)
		if u.MaxConnsPerTarget == 0 {
			u.MaxConnsPerTarget = DefaultMaxConnsPerTarget
		}
		if u.EjectAfter == 0 {
			u.EjectAfter = DefaultEjectAfter
		}
		setDur(&u.EjectFor, DefaultEjectFor)
		if !u.Meta.Has("retry_on") {
			u.RetryOn = []string{RetryConnect}
		}
		if u.RetryBudget == nil {
			u.RetryBudget = &RetryBudget{}
		}
		if b := u.RetryBudget; !b.Meta.Has("ratio") {
			b.Ratio = DefaultRetryBudgetRatio
		}
		if b := u.RetryBudget; !b.Meta.Has("min_per_second") {
			b.MinPerSecond = DefaultRetryBudgetMinPerSecond
		}
		if b := u.RetryBudget; !b.Meta.Has("window") {
			b.Window = Duration(DefaultRetryBudgetWindow)
		}
		if h := u.HealthCheck; h != nil {
			setStr(&h.Path, "/healthz")
			setDur(&h.Interval, DefaultHealthInterval)
			// A check must end before the next one starts.
			setDur(&h.Timeout, min(DefaultHealthTimeout, h.Interval.D()))
		}
	}
}
