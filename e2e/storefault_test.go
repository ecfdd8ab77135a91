package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/redistest"
)

// storeFaultConfig has one fail-open and one fail-closed route on the
// limiter alone, with the default store_timeout, and a route without store
// calls: what a hung Redis must not stall.
const storeFaultConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: warn, access_log: false }
redis: { addrs: ["%s"] }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: open
    match: { path_prefix: /open/ }
    upstream: echo
    plugins:
      - ratelimit: { key: ip, limit: 1000000, period: 1m, on_store_error: allow, headers: off }
  - name: closed
    match: { path_prefix: /closed/ }
    upstream: echo
    plugins:
      - ratelimit: { key: ip, limit: 1000000, period: 1m, on_store_error: deny, headers: off }
  - name: plain
    match: { path_prefix: /plain/ }
    upstream: echo
`

// Fault-test timing. storeTimeout is the ratelimit default; answers during
// a fault must come within it plus faultMargin (generous: a busy 2-core
// machine running the race detector).
const (
	storeTimeout    = 50 * time.Millisecond
	faultMargin     = 250 * time.Millisecond
	faultDuration   = 3 * time.Second
	readyzBound     = time.Second
	faultLoadRate   = 500 // requests per second over the open and closed routes
	faultLoadConns  = 32
	goroutineLimit  = 300 // above the figure before the fault
	recoveryTimeout = 5 * time.Second
)

// faultClient has room for every load connection, so the test does not
// churn sockets.
var faultClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: faultLoadConns + 8, MaxConnsPerHost: faultLoadConns + 8},
}

// faultSample is one response seen during a fault test.
type faultSample struct {
	route  string
	start  time.Time
	took   time.Duration
	status int
}

// faultLoad sends requests to the open and closed routes at about
// faultLoadRate per second from faultLoadConns goroutines, and polls
// /readyz and the goroutine count, until stop is closed.
type faultLoad struct {
	gw      *gatewaytest.Process
	mu      sync.Mutex
	samples []faultSample
	readyz  []faultSample
	peak    atomic.Int64
	wg      sync.WaitGroup
	stop    chan struct{}
}

func startFaultLoad(gw *gatewaytest.Process) *faultLoad {
	l := &faultLoad{gw: gw, stop: make(chan struct{})}
	interval := time.Duration(faultLoadConns) * time.Second / faultLoadRate
	for i := range faultLoadConns {
		route := []string{"open", "closed"}[i%2]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				start := time.Now()
				st := 0
				if resp, err := faultClient.Get(gw.URL("/" + route + "/x")); err == nil {
					st = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				l.mu.Lock()
				l.samples = append(l.samples, faultSample{route: route, start: start, took: took, status: st})
				l.mu.Unlock()
				select {
				case <-l.stop:
					return
				case <-time.After(interval - min(took, interval)):
				}
			}
		}()
	}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		for {
			start := time.Now()
			st := 0
			if resp, err := faultClient.Get(gw.AdminURL("/readyz")); err == nil {
				st = resp.StatusCode
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			l.mu.Lock()
			l.readyz = append(l.readyz, faultSample{route: "readyz", start: start, took: time.Since(start), status: st})
			l.mu.Unlock()
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer l.wg.Done()
		for {
			if n, err := goroutines(gw); err == nil && int64(n) > l.peak.Load() {
				l.peak.Store(int64(n))
			}
			select {
			case <-l.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return l
}

// finish stops the load and returns what it saw.
func (l *faultLoad) finish() (samples, readyz []faultSample) {
	close(l.stop)
	l.wg.Wait()
	return l.samples, l.readyz
}

// goroutines reads go_goroutines from the gateway's /metrics.
func goroutines(gw *gatewaytest.Process) (int, error) {
	resp, err := faultClient.Get(gw.AdminURL("/metrics"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics")
}

// storeFault runs steady load through gw, calls fault, keeps the load on
// for faultDuration, calls heal and checks that
//
//   - during the fault, the fail-open route answers 200 and the fail-closed
//     route 503 (or 200 if the store answered), each within store_timeout
//     plus faultMargin;
//   - /readyz answers within readyzBound throughout;
//   - the gateway's goroutines stay within goroutineLimit of the figure
//     before the fault;
//   - after heal, both routes answer 200 again within recoveryTimeout and
//     the goroutines go back down.
func storeFault(t *testing.T, gw *gatewaytest.Process, fault, heal func()) {
	t.Helper()
	for _, route := range []string{"open", "closed", "plain"} {
		if st, _ := statusOf(gw.URL("/"+route+"/x"), ""); st != 200 {
			t.Fatalf("%s before the fault: %d", route, st)
		}
	}
	load := startFaultLoad(gw)
	time.Sleep(time.Second)
	base, err := goroutines(gw)
	if err != nil {
		t.Fatal(err)
	}
	load.peak.Store(int64(base))
	faultAt := time.Now()
	fault()
	// The plain route has no store call: it must not notice.
	plainWorst := time.Duration(0)
	for time.Since(faultAt) < faultDuration {
		start := time.Now()
		if st, _ := statusOf(gw.URL("/plain/x"), ""); st != 200 {
			t.Errorf("plain route during the fault: %d", st)
		}
		plainWorst = max(plainWorst, time.Since(start))
		time.Sleep(100 * time.Millisecond)
	}
	peak := load.peak.Load()
	healAt := time.Now()
	heal()
	// Recovery: both store routes answer 200 again.
	var recovered time.Duration
	for {
		okOpen, _ := statusOf(gw.URL("/open/x"), "")
		okClosed, _ := statusOf(gw.URL("/closed/x"), "")
		if okOpen == 200 && okClosed == 200 {
			recovered = time.Since(healAt)
			break
		}
		if time.Since(healAt) > recoveryTimeout {
			load.finish()
			t.Fatalf("not recovered %v after the fault ended: open %d, closed %d", recoveryTimeout, okOpen, okClosed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	samples, readyz := load.finish()

	bound := storeTimeout + faultMargin
	// total counts requests sent during the fault, done those answered
	// before it ended, last those answered in its last second; before,
	// those answered in the second before it.
	type tally struct{ total, done, last, before, ok, unavailable, other, slow int }
	during := map[string]*tally{"open": {}, "closed": {}}
	var worst = map[string]time.Duration{}
	for _, s := range samples {
		end := s.start.Add(s.took)
		if end.Before(faultAt) && !end.Before(faultAt.Add(-time.Second)) {
			during[s.route].before++
		}
		if s.start.Before(faultAt) || !s.start.Before(healAt) {
			continue
		}
		c := during[s.route]
		c.total++
		if end.Before(healAt) {
			c.done++
			if !end.Before(healAt.Add(-time.Second)) {
				c.last++
			}
		}
		worst[s.route] = max(worst[s.route], s.took)
		switch {
		case s.status == 200:
			c.ok++
		case s.status == 503:
			c.unavailable++
		default:
			c.other++
		}
		if s.took > bound {
			c.slow++
		}
	}
	var readyWorst time.Duration
	readyCodes := map[int]int{}
	for _, s := range readyz {
		if s.start.Before(faultAt) || !s.start.Before(healAt) {
			continue
		}
		readyWorst = max(readyWorst, s.took)
		readyCodes[s.status]++
		if s.took > readyzBound || s.status == 0 {
			t.Errorf("/readyz %v into the fault: status %d after %v, want an answer within %v", s.start.Sub(faultAt).Round(time.Millisecond), s.status, s.took.Round(time.Millisecond), readyzBound)
		}
	}
	after, _ := goroutines(gw)
	for _, route := range []string{"open", "closed"} {
		c := during[route]
		t.Logf("during %v of fault, %s route: %d requests sent, %d answered before the fault ended (%d in its last second, %d in the second before it); %d 200, %d 503, %d other, %d over %v, worst %v",
			healAt.Sub(faultAt).Round(time.Millisecond), route, c.total, c.done, c.last, c.before,
			c.ok, c.unavailable, c.other, c.slow, bound, worst[route].Round(time.Millisecond))
	}
	t.Logf("/readyz: worst %v, statuses %v; goroutines %d before, peak %d, %d after; plain route worst %v; recovered %v after the fault ended",
		readyWorst.Round(time.Millisecond), readyCodes, base, peak, after, plainWorst.Round(time.Millisecond), recovered.Round(time.Millisecond))

	for _, route := range []string{"open", "closed"} {
		c := during[route]
		// Answers keep coming at no less than half the rate before the
		// fault; a stalled gateway answers a handful.
		if want := c.before * int(faultDuration/time.Second) / 2; c.done < want {
			t.Errorf("%s route: only %d requests answered during the fault, want at least %d (%d answered in the second before it)", route, c.done, want, c.before)
		}
		if c.last < c.before/2 {
			t.Errorf("%s route: only %d requests answered in the last second of the fault, %d in the second before it", route, c.last, c.before)
		}
		if c.slow > 0 {
			t.Errorf("%s route: %d requests took longer than store_timeout + %v (worst %v)", route, c.slow, faultMargin, worst[route])
		}
		if c.other > 0 {
			t.Errorf("%s route: %d answers neither 200 nor 503", route, c.other)
		}
	}
	if during["open"].unavailable > 0 {
		t.Errorf("fail-open route answered 503 %d times", during["open"].unavailable)
	}
	if during["closed"].unavailable == 0 {
		t.Errorf("fail-closed route never answered 503: the fault was not seen")
	}
	if peak > int64(base+goroutineLimit) {
		t.Errorf("goroutines peaked at %d during the fault, %d before (limit +%d)", peak, base, goroutineLimit)
	}
	// Stuck calls are released once the store answers again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := goroutines(gw)
		if err == nil && n <= base+goroutineSlack*2 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("goroutines did not come back down after the fault: %d, %d before", n, base)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := statusOf(gw.AdminURL("/readyz"), ""); st != 200 {
		t.Errorf("/readyz after the fault: %d", st)
	}
}

// startStoreFault starts a gateway on its own redis-server.
func startStoreFault(t *testing.T, args ...string) (*redistest.Server, *gatewaytest.Process) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: store fault tests pause Redis for seconds")
	}
	rs := redistest.Start(t, args...)
	rs.RequireOwned(t)
	echoAddr := startEcho(t, "echo")
	return rs, gatewaytest.Start(t, fmt.Sprintf(storeFaultConfig, rs.Addr(), echoAddr))
}

// TestStorePausedRedis: a redis-server stopped with SIGSTOP under load
// (connections open, nothing answered) is handled like a dead one: every
// store route answers within its store_timeout per on_store_error, /readyz
// answers, goroutines stay bounded, and all recovers on SIGCONT.
func TestStorePausedRedis(t *testing.T) {
	rs, gw := startStoreFault(t, "--save", "")
	storeFault(t, gw, rs.Pause, rs.Resume)
}

// TestStoreBusyScript: a Lua script that keeps Redis busy for seconds (under
// busy-reply-threshold, so other clients get no BUSY reply, only silence)
// is handled the same way.
func TestStoreBusyScript(t *testing.T) {
	rs, gw := startStoreFault(t, "--save", "")
	done := make(chan error, 1)
	storeFault(t, gw, func() {
		go func() { done <- busyScript(rs.Addr(), faultDuration) }()
		time.Sleep(20 * time.Millisecond)
	}, func() {
		if err := <-done; err != nil {
			t.Errorf("busy script: %v", err)
		}
	})
}

// busyScript runs a Lua loop on addr that keeps the server busy for d.
func busyScript(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d + 10*time.Second))
	script := `local t = redis.call('TIME') local start = t[1] * 1000000 + t[2]
while true do
  local n = redis.call('TIME')
  if n[1] * 1000000 + n[2] - start >= tonumber(ARGV[1]) then return 1 end
end`
	us := strconv.FormatInt(d.Microseconds(), 10)
	cmd := fmt.Sprintf("*4\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n$%d\r\n%s\r\n", len(script), script, len(us), us)
	if _, err := c.Write([]byte(cmd)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, ":1") {
		return fmt.Errorf("script reply %q", strings.TrimSpace(line))
	}
	return nil
}
