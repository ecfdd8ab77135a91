package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
)

// Balancing strategies accepted in Config.Balance.
const (
	// BalanceRoundRobin sends requests to the targets in turn.
	BalanceRoundRobin = "round_robin"
	// BalanceLeastConn sends each request to the target with the fewest
	// requests in flight.
	BalanceLeastConn = "least_conn"
)

// Defaults applied by New (and by Key) to zero-valued settings.
const (
	// DefaultConnectTimeout is the default Config.ConnectTimeout.
	DefaultConnectTimeout = time.Second
	// DefaultTimeout is the default Config.Timeout.
	DefaultTimeout = 15 * time.Second
	// DefaultMaxConnsPerTarget is the default Config.MaxConnsPerTarget.
	DefaultMaxConnsPerTarget = 1024
	// DefaultEjectAfter is the default Config.EjectAfter.
	DefaultEjectAfter = 3
	// DefaultEjectFor is the default Config.EjectFor.
	DefaultEjectFor = 10 * time.Second
	// DefaultHealthCheckInterval is the default HealthCheck.Interval.
	DefaultHealthCheckInterval = 5 * time.Second
	// DefaultHealthCheckTimeout is the default HealthCheck.Timeout, lowered
	// to the interval when that is shorter.
	DefaultHealthCheckTimeout = 2 * time.Second
	// DefaultHealthCheckPath is the default HealthCheck.Path.
	DefaultHealthCheckPath = "/"
)

// MaxTargets is the largest number of targets one upstream may list.
const MaxTargets = 64

// MaxWeight is the largest weight of one target.
const MaxWeight = 10000

// Retry conditions accepted in Config.RetryOn, besides the status codes
// "500" to "599".
const (
	// RetryConnect retries a request that got no connection: the connect
	// failed (refused, timed out, TLS verification failed) or every
	// connection slot of the target was busy. Nothing was sent.
	RetryConnect = "connect"
)

// Retry budget defaults (see RetryBudget).
const (
	// DefaultRetryBudgetRatio is the default RetryBudget.Ratio.
	DefaultRetryBudgetRatio = 0.2
	// DefaultRetryBudgetMinPerSecond is the default RetryBudget.MinPerSecond.
	DefaultRetryBudgetMinPerSecond = 10
	// DefaultRetryBudgetWindow is the default RetryBudget.Window.
	DefaultRetryBudgetWindow = 10 * time.Second
	// MaxRetryBudgetWindow is the longest RetryBudget.Window.
	MaxRetryBudgetWindow = time.Minute
)

// DefaultRetryOn is the retry condition list used when Config.RetryOn is nil.
var DefaultRetryOn = []string{RetryConnect}

// Config describes one upstream: a named set of targets and how requests are
// spread over them, timed, retried and checked.
type Config struct {
	// Name is the upstream name from the configuration; it labels metrics
	// and logs.
	Name string
	// Targets are base URLs such as "http://127.0.0.1:9002" or
	// "https://api.internal:443": scheme http or https, a host and an optional
	// port, no path, query, fragment or user info.
	Targets []string
	// Weights holds the weight of each target, Weights[i] that of
	// Targets[i]: its share of the requests is its weight divided by the sum
	// of the weights of the targets that take traffic. 0 drains a target (it
	// gets no requests; its health checks go on); at least one weight must
	// be positive. Nil gives every target weight 1.
	Weights []int
	// Balance is BalanceRoundRobin (the default) or BalanceLeastConn. Both
	// honour Weights: round robin spreads the requests in proportion to the
	// weights, interleaved; least_conn picks the target with the fewest
	// requests in flight per unit of weight, ties broken by weight.
	Balance string
	// ConnectTimeout bounds the TCP connect plus TLS handshake (default 1s).
	ConnectTimeout time.Duration
	// Timeout bounds the whole upstream exchange, from picking a target to
	// the end of the response body (default 15s).
	Timeout time.Duration
	// MaxConnsPerTarget caps the connections to each target (default 1024).
	MaxConnsPerTarget int
	// Retries is how many more attempts an idempotent request (GET, HEAD,
	// OPTIONS, PUT, DELETE, TRACE) may make, on another target when there is
	// one, for the conditions of RetryOn. A request whose body is streamed
	// (not held by the gateway) is never retried, and every retry needs
	// room in the RetryBudget. Default 0.
	Retries int
	// RetryOn lists what is retried: RetryConnect (no connection could be
	// had; nothing was sent) and response status codes "500" to "599" (the
	// response is dropped before anything of it reached the client). Nil
	// means DefaultRetryOn.
	RetryOn []string
	// RetryBudget caps the retries of the upstream relative to its
	// requests, so that retries cannot multiply the load of a failing
	// upstream. Nil means the defaults.
	RetryBudget *RetryBudget
	// MaxResponseBodySize limits the upstream response body in bytes; 0 means
	// unlimited.
	MaxResponseBodySize int
	// HealthCheck enables active health checks; nil disables them.
	HealthCheck *HealthCheck
	// EjectAfter is the number of consecutive connect failures that eject a
	// target (default 3); a negative value disables passive ejection.
	EjectAfter int
	// EjectFor is how long an ejected target is skipped (default 10s).
	EjectFor time.Duration
	// TLS configures the connections to https targets; nil verifies them
	// against the system roots with each target's host as the server name.
	// Set, it requires every target to be https. A certificate that fails
	// verification is a connect failure: ErrBadGateway, retried on another
	// target and counted towards passive ejection like a refused connect.
	TLS *TLS
}

// RetryBudget allows a retry only while the retries of the last Window
// stay within Ratio times the retry-eligible requests of that Window, plus
// MinPerSecond per second of the Window (so that an upstream with little
// traffic can still retry). A retry over the budget is not made: the
// request fails (or the status is answered) as if no retries were left.
type RetryBudget struct {
	// Ratio is the share of retries allowed, 0 to 1 (default 0.2).
	Ratio float64
	// MinPerSecond is the retries allowed per second regardless of the
	// ratio, 0 or more (default 10).
	MinPerSecond int
	// Window is the sliding window the budget is counted over, whole
	// seconds from 1s to 1m (default 10s; 0 means the default).
	Window time.Duration
}

// HealthCheck configures active health checks: every Interval each target
// gets a GET for Path and is healthy while it answers 2xx or 3xx within
// Timeout.
type HealthCheck struct {
	// Path is the request path, starting with "/" (default "/").
	Path string
	// Interval is the time between two checks of a target (default 5s).
	Interval time.Duration
	// Timeout bounds one check (default 2s, at most Interval).
	Timeout time.Duration
}

// withDefaults returns c with every zero-valued setting replaced by its
// default. It does not validate.
func (c Config) withDefaults() Config {
	if c.Balance == "" {
		c.Balance = BalanceRoundRobin
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxConnsPerTarget == 0 {
		c.MaxConnsPerTarget = DefaultMaxConnsPerTarget
	}
	if c.EjectAfter == 0 {
		c.EjectAfter = DefaultEjectAfter
	}
	if c.EjectFor == 0 {
		c.EjectFor = DefaultEjectFor
	}
	if c.RetryOn == nil {
		c.RetryOn = DefaultRetryOn
	}
	if c.RetryBudget == nil {
		c.RetryBudget = &RetryBudget{Ratio: DefaultRetryBudgetRatio, MinPerSecond: DefaultRetryBudgetMinPerSecond}
	}
	if c.RetryBudget.Window == 0 {
		b := *c.RetryBudget
		b.Window = DefaultRetryBudgetWindow
		c.RetryBudget = &b
	}
	if c.HealthCheck != nil {
		hc := *c.HealthCheck
		if hc.Path == "" {
			hc.Path = DefaultHealthCheckPath
		}
		if hc.Interval == 0 {
			hc.Interval = DefaultHealthCheckInterval
		}
		if hc.Timeout == 0 {
			hc.Timeout = min(DefaultHealthCheckTimeout, hc.Interval)
		}
		c.HealthCheck = &hc
	}
	return c
}

// Key returns a canonical string of every setting, defaults applied. Two
// configurations with equal keys behave identically, so the gateway may keep
// the same *Upstream across configuration reloads.
func (c Config) Key() string {
	d := c.withDefaults()
	var b strings.Builder
	b.WriteString(d.PoolKey())
	b.WriteString(" weights=[")
	for i := range d.Targets {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(d.weight(i)))
	}
	b.WriteString("] balance=")
	b.WriteString(strconv.Quote(d.Balance))
	b.WriteString(" retries=" + strconv.Itoa(d.Retries))
	b.WriteString(" retry_on=[" + strings.Join(d.RetryOn, ",") + "]")
	b.WriteString(" retry_budget={ratio=" + strconv.FormatFloat(d.RetryBudget.Ratio, 'g', -1, 64))
	b.WriteString(" min_per_second=" + strconv.Itoa(d.RetryBudget.MinPerSecond))
	b.WriteString(" window=" + d.RetryBudget.Window.String() + "}")
	return b.String()
}

// PoolKey returns a canonical string of the settings of the target set:
// every setting but the policy (Weights, Balance, Retries, RetryOn,
// RetryBudget). Configurations with equal pool keys can share connections
// and health state (see Upstream.Derive).
func (c Config) PoolKey() string {
	d := c.withDefaults()
	var b strings.Builder
	b.WriteString("name=")
	b.WriteString(strconv.Quote(d.Name))
	b.WriteString(" targets=[")
	for i, raw := range d.Targets {
		if i > 0 {
			b.WriteByte(',')
		}
		if t, err := parseTarget(raw); err == nil {
			raw = t.url
		}
		b.WriteString(strconv.Quote(raw))
	}
	b.WriteString("]")
	b.WriteString(" connect_timeout=" + d.ConnectTimeout.String())
	b.WriteString(" timeout=" + d.Timeout.String())
	b.WriteString(" max_conns_per_target=" + strconv.Itoa(d.MaxConnsPerTarget))
	b.WriteString(" max_response_body_size=" + strconv.Itoa(d.MaxResponseBodySize))
	b.WriteString(" eject_after=" + strconv.Itoa(d.EjectAfter))
	b.WriteString(" eject_for=" + d.EjectFor.String())
	if hc := d.HealthCheck; hc != nil {
		b.WriteString(" health_check={path=" + strconv.Quote(hc.Path))
		b.WriteString(" interval=" + hc.Interval.String())
		b.WriteString(" timeout=" + hc.Timeout.String() + "}")
	} else {
		b.WriteString(" health_check=off")
	}
	if d.TLS != nil {
		b.WriteString(" tls=" + d.TLS.key())
	}
	return b.String()
}

// weight returns the weight of target i.
func (c Config) weight(i int) int {
	if c.Weights == nil {
		return 1
	}
	if i < len(c.Weights) {
		return c.Weights[i]
	}
	return 0
}

// Problems applies the defaults and returns every reason New would refuse
// c, one error each, as "field: message" with field the setting's key
// (health_check.timeout, targets[1]), so a caller can point at it.
func (c Config) Problems() []error {
	err := c.withDefaults().validate()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// validate checks a configuration that already has its defaults applied and
// returns every problem found, joined.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.Name == "" {
		add("name: must not be empty")
	}
	switch n := len(c.Targets); {
	case n == 0:
		add("targets: must list at least one target")
	case n > MaxTargets:
		add("targets: at most %d targets, got %d", MaxTargets, n)
	}
	seen := make(map[string]bool, len(c.Targets))
	var plain, secure int
	for i, raw := range c.Targets {
		t, err := parseTarget(raw)
		if err != nil {
			add("targets[%d]: %w", i, err)
			continue
		}
		if seen[t.url] {
			add("targets[%d]: duplicate target %q", i, config.RedactURL(raw))
		}
		seen[t.url] = true
		if t.isTLS {
			secure++
		} else {
			plain++
		}
	}
	switch {
	case plain > 0 && secure > 0:
		add("targets: mix http and https targets: a request would be encrypted or not depending on the target picked; make them all https (or split the upstream)")
	case c.TLS != nil && plain > 0:
		add("tls: applies to https targets only, and every target is http")
	}
	if c.TLS != nil {
		_, terrs := c.TLS.build()
		errs = append(errs, terrs...)
	}
	if c.Balance != BalanceRoundRobin && c.Balance != BalanceLeastConn {
		add("balance: must be %q or %q, got %q", BalanceRoundRobin, BalanceLeastConn, c.Balance)
	}
	if c.ConnectTimeout < 0 {
		add("connect_timeout: must not be negative, got %s", c.ConnectTimeout)
	}
	if c.Timeout < 0 {
		add("timeout: must not be negative, got %s", c.Timeout)
	}
	if c.MaxConnsPerTarget < 0 {
		add("max_conns_per_target: must not be negative, got %d", c.MaxConnsPerTarget)
	}
	if c.Weights != nil {
		if len(c.Weights) != len(c.Targets) {
			add("weights: %d weights for %d targets", len(c.Weights), len(c.Targets))
		}
		positive := false
		for i, w := range c.Weights {
			if w < 0 || w > MaxWeight {
				add("targets[%d].weight: must be between 0 and %d, got %d", i, MaxWeight, w)
			}
			positive = positive || w > 0
		}
		if !positive && len(c.Weights) > 0 {
			add("targets: every target has weight 0: at least one must take traffic")
		}
	}
	if c.Retries < 0 {
		add("retries: must not be negative, got %d", c.Retries)
	}
	_, _, rerrs := parseRetryOn(c.RetryOn)
	errs = append(errs, rerrs...)
	if b := c.RetryBudget; b != nil {
		if !(b.Ratio >= 0 && b.Ratio <= 1) {
			add("retry_budget.ratio: must be between 0 and 1, got %g", b.Ratio)
		}
		if b.MinPerSecond < 0 {
			add("retry_budget.min_per_second: must not be negative, got %d", b.MinPerSecond)
		}
		if b.Window < time.Second || b.Window > MaxRetryBudgetWindow || b.Window%time.Second != 0 {
			add("retry_budget.window: must be whole seconds from 1s to %s, got %s", MaxRetryBudgetWindow, b.Window)
		}
	}
	if c.MaxResponseBodySize < 0 {
		add("max_response_body_size: must not be negative, got %d", c.MaxResponseBodySize)
	}
	if c.EjectFor < 0 {
		add("eject_for: must not be negative, got %s", c.EjectFor)
	}
	if hc := c.HealthCheck; hc != nil {
		if !strings.HasPrefix(hc.Path, "/") {
			add("health_check.path: must start with \"/\", got %q", hc.Path)
		} else if strings.ContainsAny(hc.Path, " \t\r\n#") {
			add("health_check.path: must not contain spaces, control characters or '#', got %q", hc.Path)
		}
		if hc.Interval < 0 {
			add("health_check.interval: must not be negative, got %s", hc.Interval)
		}
		if hc.Timeout < 0 {
			add("health_check.timeout: must not be negative, got %s", hc.Timeout)
		} else if hc.Interval > 0 && hc.Timeout > hc.Interval {
			add("health_check.timeout: must not exceed the interval %s, got %s", hc.Interval, hc.Timeout)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// targetAddr is a parsed target URL.
type targetAddr struct {
	url    string // canonical form: scheme://host[:port]
	scheme string // "http" or "https"
	host   string // host[:port] as written, lower-cased: the URI host sent upstream
	addr   string // host:port to dial, default port added
	name   string // host name without port, for TLS server name verification
	isTLS  bool
}

// parseTarget validates one target URL.
func parseTarget(raw string) (targetAddr, error) {
	var t targetAddr
	// Errors quote the target without its userinfo or query: they are
	// refused, and may hold credentials.
	shown := config.RedactURL(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return t, fmt.Errorf("invalid URL %q", shown)
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		t.scheme = "http"
	case "https":
		t.scheme = "https"
		t.isTLS = true
	default:
		return t, fmt.Errorf("%q: scheme must be http or https", shown)
	}
	if u.Opaque != "" || u.Host == "" {
		return t, fmt.Errorf("%q: must have the form scheme://host:port", shown)
	}
	if u.User != nil {
		return t, fmt.Errorf("%q: must not contain user info", shown)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return t, fmt.Errorf("%q: must not contain a path, query or fragment", shown)
	}
	host := strings.ToLower(u.Host)
	name := u.Hostname()
	if name == "" {
		return t, fmt.Errorf("%q: missing host", shown)
	}
	if strings.Contains(name, "%") {
		return t, fmt.Errorf("%q: zoned IPv6 addresses are not supported", shown)
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(host, ":") {
			return t, fmt.Errorf("%q: empty port", shown)
		}
		port = "80"
		if t.isTLS {
			port = "443"
		}
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return t, fmt.Errorf("%q: port must be a number from 1 to 65535", shown)
	}
	t.host = host
	t.name = strings.ToLower(name)
	t.addr = net.JoinHostPort(t.name, port)
	t.url = t.scheme + "://" + host
	return t, nil
}

// parseRetryOn parses retry conditions: whether connect failures are
// retried, and the set of retried statuses (bit code-500 set for code).
func parseRetryOn(conds []string) (connect bool, statuses [2]uint64, errs []error) {
	seen := make(map[string]bool, len(conds))
	for i, c := range conds {
		if seen[c] {
			errs = append(errs, fmt.Errorf("retry_on[%d]: %q is listed twice", i, c))
			continue
		}
		seen[c] = true
		if c == RetryConnect {
			connect = true
			continue
		}
		code, cerr := strconv.Atoi(c)
		if cerr != nil || len(c) != 3 {
			errs = append(errs, fmt.Errorf("retry_on[%d]: expected %q or a status code from 500 to 599, got %q", i, RetryConnect, c))
			continue
		}
		if code < 500 || code > 599 {
			errs = append(errs, fmt.Errorf("retry_on[%d]: only 5xx statuses are retried (500 to 599), got %d", i, code))
			continue
		}
		statuses[(code-500)/64] |= 1 << uint((code-500)%64)
	}
	return connect, statuses, errs
}
