package config

// Redis configures the shared store. When the redis: section is absent the
// gateway runs on an in-process store (one instance only).
type Redis struct {
	// Addrs are seed addresses; more than one selects Redis Cluster.
	Addrs           []string `yaml:"addrs"`
	Username        string   `yaml:"username"`
	Password        string   `yaml:"password"`
	DB              int      `yaml:"db"`
	ClientSideCache *bool    `yaml:"client_side_cache"`
	DialTimeout     Duration `yaml:"dial_timeout"`
	Meta            Meta     `yaml:"-"`
}

// CacheEnabled reports whether client-side caching is on (default true).
func (r *Redis) CacheEnabled() bool { return r.ClientSideCache == nil || *r.ClientSideCache }
