package e2e

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/redistest"
)

// leaseConfig is one route limited with sync: lease on Redis; %s is an
// extra route, so a reload has something to change.
const leaseConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
server: { shutdown_timeout: 10s }
redis: { addrs: ["%s"] }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: lease
    match: { path_prefix: /lease/ }
    upstream: echo
    plugins:
      - ratelimit: { key: route, limit: 100000, period: 1h, burst: 10000, sync: lease, store_timeout: 2s }
%s
`

// leaseKey is the Redis bucket of the lease route.
const leaseKey = "gatewayd:rl:{lease|route:lease}"

// bucketFields returns how many fields the bucket's hash has: l and t,
// plus o, oe and one per holder while leases are out.
func bucketFields(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	out, err := rs.Do("HLEN", leaseKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("HLEN = %q: %v", out, err)
	}
	return n
}

// waitFields waits until the bucket has want fields.
func waitFields(t *testing.T, rs *redistest.Server, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := bucketFields(t, rs)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the bucket has %d fields, want %d", what, n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisLeaseGivenBackAtReloadAndShutdown: a gateway with sync: lease
// holds a lease on the route's bucket while serving; a reload retires the
// old plugins, which give their leases back, and so does shutdown. The
// bucket then holds every token not admitted.
func TestRedisLeaseGivenBackAtReloadAndShutdown(t *testing.T) {
	rs := redistest.Start(t)
	echoAddr := startEcho(t, "echo")
	cfgA := fmt.Sprintf(leaseConfig, rs.Addr(), echoAddr, "")
	cfgB := fmt.Sprintf(leaseConfig, rs.Addr(), echoAddr, `  - name: extra
    match: { path_prefix: /extra/ }
    upstream: echo`)
	gw := gatewaytest.Start(t, cfgA)
	send := func(n int) {
		for i := 0; i < n; i++ {
			if r := do(t, "GET", gw.URL("/lease/x"), nil, ""); r.Status != 200 {
				t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
			}
		}
	}
	send(50)
	// l, t, o, oe and this instance's lease.
	waitFields(t, rs, 5, "while serving")

	gw.WriteConfig(cfgB)
	if status, body := reload(t, gw); status != 200 {
		t.Fatalf("reload: %d %s", status, body)
	}
	waitFields(t, rs, 2, "after the reload")

	send(50)
	waitFields(t, rs, 5, "serving after the reload")
	gw.Signal(syscall.SIGTERM)
	if code, err := gw.Wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("shutdown: exit %d %v\n%s", code, err, gw.Logs())
	}
	waitFields(t, rs, 2, "after shutdown")

	// Every token not admitted is back: 10000 − 100, plus the refill of
	// the test's duration (28 a second).
	level, err := rs.Do("HGET", leaseKey, "l")
	if err != nil {
		t.Fatal(err)
	}
	units, err := strconv.ParseInt(level, 10, 64)
	if err != nil {
		t.Fatalf("HGET l = %q: %v", level, err)
	}
	const unit = int64(time.Hour / time.Microsecond)
	if tokens := units / unit; tokens < 10000-100 {
		t.Fatalf("bucket holds %d tokens after 100 admitted, want at least %d", tokens, 10000-100)
	}
}
