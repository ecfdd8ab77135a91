package proxy

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// healthUserAgent identifies active health check requests in upstream logs.
const healthUserAgent = "gatewayd-health-check"

// healthChecker probes one target. It has its own HostClient so that a busy
// traffic pool cannot fail a check, and its connect failures do not count
// towards passive ejection.
type healthChecker struct {
	u        *targetSet
	t        *target
	client   *fasthttp.HostClient
	uri      string
	interval time.Duration
	timeout  time.Duration
}

func newHealthChecker(u *targetSet, t *target, hc HealthCheck) *healthChecker {
	return &healthChecker{
		u: u,
		t: t,
		client: &fasthttp.HostClient{
			Addr:                      t.addr,
			IsTLS:                     t.isTLS,
			DialTimeout:               func(addr string, timeout time.Duration) (net.Conn, error) { return t.dial(addr, timeout) },
			MaxConns:                  1,
			MaxIdemponentCallAttempts: 1,
			MaxResponseBodySize:       bufferLimit,
			ReadBufferSize:            maxResponseHeaderBytes,
			ReadTimeout:               hc.Timeout,
			WriteTimeout:              hc.Timeout,
			NoDefaultUserAgentHeader:  true,
			DisablePathNormalizing:    true,
		},
		uri:      t.url + hc.Path,
		interval: hc.Interval,
		timeout:  hc.Timeout,
	}
}

// run checks the target at once and then every interval until the upstream
// is closed.
func (c *healthChecker) run() {
	defer c.u.wg.Done()
	defer c.client.CloseIdleConnections()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	ticker := time.NewTicker(c.interval)
	defer ticker.Stop()
	for {
		c.check(req, resp)
		select {
		case <-c.u.stop:
			return
		case <-ticker.C:
		}
	}
}

// check performs one probe and records the verdict.
func (c *healthChecker) check(req *fasthttp.Request, resp *fasthttp.Response) {
	req.Reset()
	req.SetRequestURI(c.uri)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.SetUserAgent(healthUserAgent)
	err := c.client.DoTimeout(req, resp, c.timeout)
	code := resp.StatusCode()
	healthy := err == nil && code >= 200 && code < 400
	resp.Reset()

	t := c.t
	if healthy {
		// A passing check also ends a passive ejection.
		c.u.connectSucceeded(t)
	}
	if t.healthy.Swap(healthy) == healthy {
		return
	}
	t.updateGauge()
	if healthy {
		c.u.logger.Info("upstream target passed its health check", zap.String("target", t.url))
		return
	}
	fields := []zap.Field{zap.String("target", t.url), zap.String("uri", c.uri)}
	if err != nil {
		fields = append(fields, zap.Error(err))
	} else {
		fields = append(fields, zap.Int("status", code))
	}
	c.u.logger.Warn("upstream target failed its health check", fields...)
}
