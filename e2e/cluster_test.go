package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// scaleOutConfig is one gateway instance of a scaled-out deployment: the
// built-in auth service and every plugin on a shared Redis (the %s
// section), in front of the echo upstream.
//
//   - limited: a per-user limit of scaleOutLimit per minute, the figure the
//     instances must hold together;
//   - users: revocation checks with a long cache_ttl, so a logout seen by
//     another instance well before it can only come from server-side
//     invalidation of the client-side cache;
//   - open, closed, limit: the failover probes. One bucket ("fo") per user
//     shared by the three; open fails open on both plugins, closed fails
//     closed on both, limit has only the limiter, failing closed (its
//     EVALSHA fails at once on a dead node, so it times the gap finely).
//
// Every store_timeout is 1s rather than the 50ms default so that a busy
// test machine does not turn a slow healthy call into a policy decision.
const scaleOutConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: warn, access_log: false }
%s
upstreams:
  echo: { targets: ["http://%s"] }
auth:
  secret: ${JWT_SECRET}
  bcrypt_cost: 4
plugins:
  auth-jwt:
    type: jwt
    secret: ${JWT_SECRET}
    issuer: gatewayd-auth
    audience: api
    forward_claims: { sub: X-User-ID }
routes:
  - name: auth
    match: { path_prefix: /v1/auth/ }
    upstream: builtin:auth
  - name: limited
    match: { path_prefix: /v1/limited/ }
    upstream: echo
    plugins:
      - auth-jwt
      - blacklist: { store_timeout: 1s }
      - ratelimit: { key: user, limit: %d, period: 1m, headers: off, store_timeout: 1s }
  - name: users
    match: { path_prefix: /v1/users/ }
    upstream: echo
    plugins: [auth-jwt, { blacklist: { cache_ttl: %s, store_timeout: 1s } }]
  - name: open
    match: { path_prefix: /v1/open/ }
    upstream: echo
    plugins:
      - auth-jwt
      - blacklist: { on_store_error: allow, store_timeout: 1s }
      - ratelimit: { key: user, bucket: fo, limit: 1000000, period: 1m, on_store_error: allow, store_timeout: 1s, headers: off }
  - name: closed
    match: { path_prefix: /v1/closed/ }
    upstream: echo
    plugins:
      - auth-jwt
      - blacklist: { on_store_error: deny, store_timeout: 1s }
      - ratelimit: { key: user, bucket: fo, limit: 1000000, period: 1m, on_store_error: deny, store_timeout: 1s, headers: off }
  - name: limit
    match: { path_prefix: /v1/limit/ }
    upstream: echo
    plugins:
      - auth-jwt
      - ratelimit: { key: user, bucket: fo, limit: 1000000, period: 1m, on_store_error: deny, store_timeout: 1s, headers: off }
`

const (
	scaleOutLimit = 20
	// revocationCacheTTL is the users route's cache_ttl: far above any
	// invalidation delay, so expiry cannot explain a fast propagation.
	revocationCacheTTL = 10 * time.Second
	// revocationBound is SPEC §4's promise on a healthy network.
	revocationBound  = 100 * time.Millisecond
	scaleOutPassword = "Scale-out-Passw0rd"
)

// startScaleOut starts n gatewayd processes sharing the Redis described by
// redisSection.
func startScaleOut(t *testing.T, redisSection string, n int) []*gatewaytest.Process {
	t.Helper()
	echoAddr := startEcho(t, "echo")
	cfg := fmt.Sprintf(scaleOutConfig, redisSection, echoAddr, scaleOutLimit, revocationCacheTTL)
	gws := make([]*gatewaytest.Process, n)
	for i := range gws {
		gws[i] = gatewaytest.Start(t, cfg, gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	}
	return gws
}

// loadClient keeps enough idle connections for the concurrent probes, so
// the test does not churn sockets (and the FD figures stay meaningful).
var loadClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
}

// statusOf sends one GET with token and returns the status and error code
// (0 and "" on a transport error).
func statusOf(url, token string) (int, string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := loadClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	if resp.StatusCode != 200 {
		_ = json.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.Error
}

// user is an account and one of its sessions.
type user struct {
	email string
	tk    tokens
	sub   string
	jti   string
}

// claimsOf decodes sub and jti from a token (the gateway verified it; the
// test only needs the ids to compute key slots).
func claimsOf(t *testing.T, tok string) (sub, jti string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.Sub == "" || c.JTI == "" {
		t.Fatalf("claims %s: %v", raw, err)
	}
	return c.Sub, c.JTI
}

var userSeq atomic.Int64

// newUser signs up through one instance and logs in through another: the
// auth service's records are shared through Redis.
func newUser(t *testing.T, gws []*gatewaytest.Process) *user {
	t.Helper()
	n := userSeq.Add(1)
	email := "scale" + strconv.FormatInt(n, 10) + "@example.com"
	signup(t, gws[int(n)%len(gws)], email, scaleOutPassword)
	return relogin(t, gws[int(n+1)%len(gws)], email)
}

func relogin(t *testing.T, gw *gatewaytest.Process, email string) *user {
	t.Helper()
	u := &user{email: email, tk: login(t, gw, email, scaleOutPassword)}
	u.sub, u.jti = claimsOf(t, u.tk.Access)
	return u
}

func logout(t *testing.T, gw *gatewaytest.Process, u *user) {
	t.Helper()
	r := do(t, "POST", gw.URL("/v1/auth/logout"), merge(bearer(u.tk.Access), jsonHdr), jsonBody(map[string]string{"refresh_token": u.tk.Refresh}))
	if r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
}

// Keys of the Redis layout a request of u touches.
func (u *user) bucketKey(bucket string) string {
	return redis.RateKey([]byte(bucket + "|user:" + u.sub))
}
func (u *user) revokedKey() string { return redis.RevokedKey(u.jti) }
func (u *user) markKey() string    { return redis.RevokeAllKey(u.sub) }

// requireClusterE2E skips when the cluster tools are missing, or in -short
// mode (these tests take tens of seconds).
func requireClusterE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Redis Cluster and Sentinel end-to-end tests take tens of seconds")
	}
	redistest.RequireClusterTools(t)
}

// TestScaleOutCluster runs three gatewayd processes, each with the
// built-in auth service, on a 3 masters + 3 replicas Redis Cluster: a
// per-user limit holds across the instances, a logout through one is
// enforced by all, users' keys spread over the shards, and a master
// failover under load is handled by the on_store_error policies, with full
// enforcement after it, no restart and no leak.
func TestScaleOutCluster(t *testing.T) {
	requireClusterE2E(t)
	c := redistest.StartCluster(t, 3, 1)
	section := "redis:\n  addrs: [" + strings.Join(c.Addrs(), ", ") + "]\n  command_timeout: 1s\n  dial_timeout: 500ms"
	gws := startScaleOut(t, section, 3)

	t.Run("PerUserLimitAcrossInstances", func(t *testing.T) {
		users := []*user{newUser(t, gws), newUser(t, gws)}
		admitLimitAcross(t, gws, users)
	})
	t.Run("LogoutEnforcedByEveryInstance", func(t *testing.T) {
		cachedChecksStayLocal(t, c, gws, newUser(t, gws))
		var delays []time.Duration
		for round := range 6 {
			delays = append(delays, logoutPropagation(t, gws, round, round == 5, nil)...)
		}
		reportPropagation(t, delays)
	})
	t.Run("UsersSpreadOverShards", func(t *testing.T) { usersSpread(t, c, gws) })
	var killedGap, killedPromotion time.Duration
	t.Run("MasterFailover", func(t *testing.T) { killedGap, killedPromotion = clusterFailover(t, c, gws, false) })
	t.Run("SilentMasterFailover", func(t *testing.T) {
		if killedGap == 0 {
			t.Skip("no gap measured for a killed master to compare with")
		}
		silentGap, silentPromotion := clusterFailover(t, c, gws, true)
		t.Logf("failover gap: silent master %v (promoted after %v), killed master %v (promoted after %v)",
			silentGap.Round(time.Millisecond), silentPromotion.Round(time.Millisecond),
			killedGap.Round(time.Millisecond), killedPromotion.Round(time.Millisecond))
		// Redis Cluster's own election time varies by a second or more
		// between runs; what the gateway adds is the gap after the
		// promotion. For a silent master that can be one liveness cycle
		// longer than for a killed one (1.5 × command_timeout: a
		// connection redialled to the paused node just before the
		// promotion is given up on only by its next unanswered PING), and
		// no more, with half a second for a loaded machine.
		const commandTimeout = time.Second // the section above
		if silent, killed := silentGap-silentPromotion, killedGap-killedPromotion; silent > killed+commandTimeout*3/2+500*time.Millisecond {
			t.Errorf("after the promotion, a silent master's gap %v is more than one liveness cycle (1.5s) and 0.5s longer than a killed master's %v", silent, killed)
		}
	})
}

// admitLimitAcross sends 60 requests per user, spread over every instance
// and 4 concurrent clients per instance, and checks that each user was
// admitted at most limit plus what refilled meanwhile, and at least limit.
func admitLimitAcross(t *testing.T, gws []*gatewaytest.Process, users []*user) {
	t.Helper()
	const perUser = 60
	type count struct{ ok, limited, other atomic.Int64 }
	counts := make([]count, len(users))
	start := time.Now()
	var wg sync.WaitGroup
	for ui, u := range users {
		for g := range gws {
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perUser / len(gws) / 4 {
						switch st, _ := statusOf(gws[g].URL("/v1/limited/x"), u.tk.Access); st {
						case 200:
							counts[ui].ok.Add(1)
						case 429:
							counts[ui].limited.Add(1)
						default:
							counts[ui].other.Add(1)
						}
					}
				}()
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	sent := perUser / len(gws) / 4 * len(gws) * 4
	refill := int64(elapsed.Seconds()*scaleOutLimit/60) + 1
	for ui, u := range users {
		ok, limited, other := counts[ui].ok.Load(), counts[ui].limited.Load(), counts[ui].other.Load()
		t.Logf("user %d (bucket slot %d): %d requests over %d instances in %v: admitted %d, 429 %d, other %d; limit %d, bound %d (limit + %d refilled)",
			ui, redistest.KeySlot(u.bucketKey("limited")), sent, len(gws), elapsed.Round(time.Millisecond), ok, limited, other,
			scaleOutLimit, scaleOutLimit+refill, refill)
		if other != 0 {
			t.Errorf("user %d: %d responses neither 200 nor 429", ui, other)
		}
		if ok > scaleOutLimit+refill {
			t.Errorf("user %d: admitted %d across the instances, more than the limit %d plus %d refilled", ui, ok, scaleOutLimit, refill)
		}
		if ok < scaleOutLimit {
			t.Errorf("user %d: admitted %d, fewer than the burst of %d", ui, ok, scaleOutLimit)
		}
	}
}

// commandCalls sums calls of a Redis command over the masters.
func commandCalls(t *testing.T, c *redistest.Cluster, cmd string) int64 {
	t.Helper()
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, m := range masters {
		out, err := m.Do("INFO", "commandstats")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
				v, _, _ := strings.Cut(rest, ",")
				n, _ := strconv.ParseInt(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// cachedChecksStayLocal shows the revocation checks of every instance are
// served from its client-side cache in cluster mode: once warm, repeated
// requests send no GET to any master.
func cachedChecksStayLocal(t *testing.T, c *redistest.Cluster, gws []*gatewaytest.Process, u *user) {
	t.Helper()
	for _, gw := range gws {
		if st, _ := statusOf(gw.URL("/v1/users/me"), u.tk.Access); st != 200 {
			t.Fatalf("warm-up: %d", st)
		}
	}
	before := commandCalls(t, c, "get")
	for range 10 {
		for _, gw := range gws {
			if st, _ := statusOf(gw.URL("/v1/users/me"), u.tk.Access); st != 200 {
				t.Fatalf("status %d", st)
			}
		}
	}
	if got := commandCalls(t, c, "get") - before; got != 0 {
		t.Fatalf("%d GETs reached the masters for %d warm revocation checks, want 0 (client-side cache)", got, 10*len(gws))
	}
}

// logoutPropagation logs a fresh session in (unless u is given), makes every instance cache
// "not revoked" for its token, logs it out (or out of everything) through
// instance round % n and returns how long each other instance took to
// refuse the token. The instance that served the logout must refuse the
// very next request.
func logoutPropagation(t *testing.T, gws []*gatewaytest.Process, round int, all bool, u *user) []time.Duration {
	t.Helper()
	if u == nil {
		u = newUser(t, gws)
	}
	for _, gw := range gws {
		if st, _ := statusOf(gw.URL("/v1/users/me"), u.tk.Access); st != 200 {
			t.Fatalf("before logout: %d", st)
		}
	}
	via := gws[round%len(gws)]
	var done time.Time
	if all {
		r := do(t, "POST", via.URL("/v1/auth/logout-all"), bearer(u.tk.Access), "")
		if r.Status != 204 {
			t.Fatalf("logout-all: %d %s", r.Status, r.Body)
		}
	} else {
		logout(t, via, u)
	}
	done = time.Now()
	if st, code := statusOf(via.URL("/v1/users/me"), u.tk.Access); st != 401 || code != "unauthorized" {
		t.Fatalf("round %d: the instance that served the logout answered %d %q on the next request, want 401", round, st, code)
	}
	var mu sync.Mutex
	var delays []time.Duration
	var wg sync.WaitGroup
	for _, gw := range gws {
		if gw == via {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				st, _ := statusOf(gw.URL("/v1/users/me"), u.tk.Access)
				d := time.Since(done)
				if st == 401 {
					mu.Lock()
					delays = append(delays, d)
					mu.Unlock()
					return
				}
				if d > revocationCacheTTL/2 {
					mu.Lock()
					delays = append(delays, -1)
					mu.Unlock()
					return
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	for _, d := range delays {
		if d < 0 {
			t.Fatalf("round %d: another instance still admitted the token %v after the logout (cache_ttl %v): invalidation did not reach it",
				round, revocationCacheTTL/2, revocationCacheTTL)
		}
	}
	return delays
}

func reportPropagation(t *testing.T, delays []time.Duration) {
	t.Helper()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	within := 0
	for _, d := range delays {
		if d <= revocationBound {
			within++
		}
	}
	t.Logf("revocation propagation to the other instances over %d checks: min %v, median %v, max %v; %d/%d within the %v promise (cache_ttl %v, the worst case)",
		len(delays), delays[0], delays[len(delays)/2], delays[len(delays)-1], within, len(delays), revocationBound, revocationCacheTTL)
}

// usersSpread signs users up until their buckets sit on every master, then
// checks each user's bucket and revoke-all mark live on the master that
// serves their slot: users are spread over the shards by their hash tags.
func usersSpread(t *testing.T, c *redistest.Cluster, gws []*gatewaytest.Process) {
	t.Helper()
	masters, err := c.Masters()
	if err != nil {
		t.Fatal(err)
	}
	byMaster := map[string][]*user{}
	slots := map[int]bool{}
	for i := 0; len(byMaster) < len(masters); i++ {
		if i == 40 {
			t.Fatalf("40 users and their buckets cover only %d of %d masters", len(byMaster), len(masters))
		}
		u := newUser(t, gws)
		if st, _ := statusOf(gws[i%len(gws)].URL("/v1/limited/x"), u.tk.Access); st != 200 {
			t.Fatalf("status %d", st)
		}
		r := do(t, "POST", gws[(i+1)%len(gws)].URL("/v1/auth/logout-all"), bearer(u.tk.Access), "")
		if r.Status != 204 {
			t.Fatalf("logout-all: %d", r.Status)
		}
		for _, key := range []string{u.bucketKey("limited"), u.markKey()} {
			owner, err := c.OwnerOfKey(key)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := owner.Do("EXISTS", key); err != nil || n != "1" {
				t.Fatalf("%s (slot %d) not on %s, the master serving its slot: %q %v", key, redistest.KeySlot(key), owner.Addr(), n, err)
			}
			slots[redistest.KeySlot(key)] = true
		}
		owner, _ := c.OwnerOfKey(u.bucketKey("limited"))
		byMaster[owner.Addr()] = append(byMaster[owner.Addr()], u)
	}
	total := 0
	for addr, us := range byMaster {
		var s []string
		for _, u := range us {
			s = append(s, strconv.Itoa(redistest.KeySlot(u.bucketKey("limited"))))
		}
		t.Logf("master %s holds the buckets of %d users, slots %s", addr, len(us), strings.Join(s, " "))
		total += len(us)
	}
	t.Logf("%d users: their buckets and revoke-all marks use %d distinct slots on %d masters", total, len(slots), len(byMaster))
}

// sample is one probe response during the failover test.
type sample struct {
	gw     int
	probe  string
	route  string
	at     time.Time
	status int
	code   string
}

// probe is a token and the routes it is sent to, with whether each
// route's keys sit on the failing node.
type probe struct {
	name     string
	u        *user
	affected map[string]bool
}

// runLoad sends every probe to every route through every instance, one
// goroutine per instance, probe and route (so a route whose store call
// waits for its timeout does not slow the others), and polls each
// instance's /readyz (route "readyz"), until stop is closed.
func runLoad(gws []*gatewaytest.Process, probes []*probe, stop <-chan struct{}) func() []sample {
	var mu sync.Mutex
	var out []sample
	var wg sync.WaitGroup
	for g, gw := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := 0
				if resp, err := loadClient.Get(gw.AdminURL("/readyz")); err == nil {
					st = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				out = append(out, sample{gw: g, probe: "-", route: "readyz", at: time.Now(), status: st})
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
		for _, p := range probes {
			for _, route := range []string{"open", "closed", "limit"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						st, code := statusOf(gw.URL("/v1/"+route+"/x"), p.u.tk.Access)
						mu.Lock()
						out = append(out, sample{gw: g, probe: p.name, route: route, at: time.Now(), status: st, code: code})
						mu.Unlock()
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
		}
	}
	return func() []sample {
		wg.Wait()
		sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
		return out
	}
}

// processStats scrapes go_goroutines and process_open_fds from an
// instance's /metrics.
func processStats(t *testing.T, gw *gatewaytest.Process) (goroutines, fds int) {
	t.Helper()
	// Idle keep-alive connections of the test client are not the
	// gateway's to count.
	loadClient.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	resp, err := loadClient.Get(gw.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_goroutines":
			goroutines = int(n)
		case "process_open_fds":
			fds = int(n)
		}
	}
	if goroutines == 0 || fds == 0 {
		t.Fatalf("/metrics of %s has no go_goroutines or process_open_fds", gw.AdminAddr)
	}
	return goroutines, fds
}

// Leak bounds after a failover: a few goroutines and sockets of slack for
// pools that were idle before and busy after.
const (
	goroutineSlack = 15
	fdSlack        = 6
)

// checkNoLeak waits (up to 20s: rueidis closes the dropped node's
// connections 5s after it stops routing to it) until every instance is
// back within slack of its figures before the failover.
func checkNoLeak(t *testing.T, gws []*gatewaytest.Process, before [][2]int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var bad []string
		var figs []string
		for i, gw := range gws {
			g, f := processStats(t, gw)
			figs = append(figs, fmt.Sprintf("instance %d: goroutines %d -> %d, open fds %d -> %d", i, before[i][0], g, before[i][1], f))
			if g > before[i][0]+goroutineSlack || f > before[i][1]+fdSlack {
				bad = append(bad, figs[len(figs)-1])
			}
		}
		if len(bad) == 0 {
			t.Logf("no leak: %s", strings.Join(figs, "; "))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines or FDs grew after the failover: %s", strings.Join(bad, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func checkAlive(t *testing.T, gws []*gatewaytest.Process) {
	t.Helper()
	for i, gw := range gws {
		if code, err := gw.Wait(10 * time.Millisecond); err == nil {
			t.Fatalf("instance %d exited with %d", i, code)
		}
	}
}

// failoverReport checks the probes' responses against the policies and
// reports, per instance, when the failed keys were served again.
//
//   - open (fail open on both plugins) answers 200 throughout;
//   - closed and limit answer 200 for probes whose keys are all on healthy
//     shards, throughout;
//   - for a probe with a key on the failed node they answer 200 before the
//     kill, 503 "unavailable" or 200 in the gap, and 200 again once the
//     instance has found the promoted replica: the gap ends at the first
//     200 after which that instance answers nothing but 200.
//
// /readyz must stay 200 throughout when readyInGap (a cluster whose other
// shards answer); otherwise its 503s are counted. It returns the longest
// gap of the instances.
func failoverReport(t *testing.T, samples []sample, probes []*probe, killed time.Time, n int, readyInGap bool) time.Duration {
	t.Helper()
	affected := map[string]map[string]bool{}
	for _, p := range probes {
		affected[p.name] = p.affected
	}
	gaps := make([]time.Duration, n)
	denied := make([]int, n)
	openDuringGap := make([]int, n)
	for g := range n {
		var lastBad time.Time
		notReady, polls := 0, 0
		for _, s := range samples {
			if s.gw != g {
				continue
			}
			if s.route == "readyz" {
				polls++
				if s.status != 200 {
					notReady++
					if readyInGap {
						t.Errorf("instance %d: /readyz %d %v after the kill: a cluster with one shard failing over is still reachable",
							g, s.status, s.at.Sub(killed).Round(time.Millisecond))
					}
				}
				continue
			}
			aff := affected[s.probe][s.route]
			switch {
			case s.status == 200:
			case s.status == 503 && s.code == "unavailable" && aff && s.route != "open" && s.at.After(killed):
				denied[g]++
				lastBad = s.at
			default:
				t.Errorf("instance %d, probe %s, route %s, %v after the kill: %d %q, want 200%s",
					g, s.probe, s.route, s.at.Sub(killed).Round(time.Millisecond), s.status, s.code,
					map[bool]string{true: " or 503 unavailable", false: ""}[aff && s.route != "open"])
			}
		}
		for _, s := range samples {
			if s.gw == g && s.route == "open" && affected[s.probe]["closed"] && s.at.After(killed) && !s.at.After(lastBad) {
				openDuringGap[g]++
			}
		}
		if denied[g] == 0 {
			t.Errorf("instance %d: no 503 for the failed shard's keys: the failure was not seen", g)
		}
		for _, s := range samples {
			if s.gw == g && s.at.After(lastBad) && s.status == 200 && affected[s.probe][s.route] && s.route != "open" {
				gaps[g] = s.at.Sub(killed)
				break
			}
		}
		if gaps[g] == 0 {
			t.Errorf("instance %d never served the failed shard's keys again", g)
		}
		t.Logf("instance %d: gap %v (fault to the failed keys served again); %d requests denied 503 by on_store_error: deny, %d admitted by on_store_error: allow meanwhile; /readyz not ready in %d of %d polls",
			g, gaps[g].Round(time.Millisecond), denied[g], openDuringGap[g], notReady, polls)
	}
	return slices.Max(gaps)
}

// clusterFailover kills a master, or with silent pauses it (SIGSTOP: its
// connections stay open and nothing is answered), under steady load
// through every instance, and returns the longest failover gap the
// instances saw and how long after the fault the replica was seen
// promoted. The goroutines of each instance must stay within
// goroutineLimit of their figure before the fault.
func clusterFailover(t *testing.T, c *redistest.Cluster, gws []*gatewaytest.Process, silent bool) (gap, promotion time.Duration) {
	t.Helper()
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	// Masters that can fail over: serving slots, with a live replica.
	failable := map[string]bool{}
	for _, n := range nodes {
		if !n.Master && !n.Failed && n.MasterID != "" {
			failable[n.MasterID] = true
		}
	}
	ownerID := func(key string) string {
		slot := redistest.KeySlot(key)
		for _, n := range nodes {
			if n.Master && n.Serves(slot) {
				return n.ID
			}
		}
		t.Fatalf("no master serves slot %d", slot)
		return ""
	}
	// The victim serves the bucket of a user whose other keys are
	// elsewhere: that probe fails fast on the limiter alone.
	var rl *user
	var dead redistest.ClusterNode
	for i := 0; rl == nil; i++ {
		if i == 30 {
			t.Fatal("no user with bucket and mark on different masters in 30 tries")
		}
		u := newUser(t, gws)
		if b := ownerID(u.bucketKey("fo")); failable[b] && b != ownerID(u.markKey()) && b != ownerID(u.revokedKey()) {
			rl = u
		}
	}
	victimID := ownerID(rl.bucketKey("fo"))
	for _, n := range nodes {
		if n.ID == victimID {
			dead = n
		}
	}
	on := func(key string) bool { return ownerID(key) == victimID }
	// A user with every key on healthy shards, and a session of theirs
	// whose jti is on the victim (its blacklist check fails).
	var ok, bl *user
	for i := 0; ok == nil || bl == nil; i++ {
		if i == 60 {
			t.Fatal("no healthy and blacklist probes in 60 logins")
		}
		var u *user
		if ok == nil {
			u = newUser(t, gws)
		} else {
			u = relogin(t, gws[i%len(gws)], ok.email)
		}
		switch {
		case on(u.bucketKey("fo")) || on(u.markKey()):
		case ok == nil && !on(u.revokedKey()):
			ok = u
		case ok != nil && on(u.revokedKey()):
			bl = u
		}
	}
	probes := []*probe{{name: "healthy", u: ok}, {name: "bucket-on-victim", u: rl}, {name: "jti-on-victim", u: bl}}
	for _, p := range probes {
		kv := on(p.u.revokedKey()) || on(p.u.markKey())
		b := on(p.u.bucketKey("fo"))
		p.affected = map[string]bool{"open": kv || b, "closed": kv || b, "limit": b}
	}
	// A logout through instance 0 before the kill, of a session whose jti
	// lives on the victim: once replicated it must survive the failover.
	var pre *user
	for i := 0; pre == nil; i++ {
		if i == 30 {
			t.Fatal("no session with its jti on the victim in 30 logins")
		}
		if u := relogin(t, gws[1], ok.email); on(u.revokedKey()) {
			pre = u
		}
	}
	logout(t, gws[0], pre)
	waitOnReplica(t, c, dead, pre.revokedKey())

	// Steady load, then the figures to compare after.
	stop := make(chan struct{})
	collect := runLoad(gws, probes, stop)
	time.Sleep(time.Second)
	before := make([][2]int, len(gws))
	for i, gw := range gws {
		before[i][0], before[i][1] = processStats(t, gw)
	}
	peaks := make([]atomic.Int64, len(gws))
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			for i, gw := range gws {
				if n, err := goroutines(gw); err == nil && int64(n) > peaks[i].Load() {
					peaks[i].Store(int64(n))
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	victim := c.Node(dead.Addr)
	fault := "kill"
	// Taken before the fault: a request may fail before Kill returns.
	killed := time.Now()
	if silent {
		fault = "pause"
		victim.Pause()
		// Cleanup kills the node, resuming it first, if the test stops
		// before it is resumed below.
	} else {
		victim.Kill()
	}
	promoted, err := c.WaitFailover(dead, 30*time.Second)
	if err != nil {
		close(stop)
		collect()
		t.Fatal(err)
	}
	promotion = time.Since(killed)
	t.Logf("replica %s promoted %v after the %s (cluster-node-timeout %v)", promoted.Addr(), promotion.Round(time.Millisecond), fault, redistest.ClusterNodeTimeout)
	// Keep the load on until every instance has served the failed keys
	// again for a while.
	time.Sleep(3 * time.Second)
	close(stop)
	samples := collect()
	<-sampled
	gap = failoverReport(t, samples, probes, killed, len(gws), true)
	checkAlive(t, gws)
	for i := range gws {
		peak := int(peaks[i].Load())
		t.Logf("instance %d: goroutines %d before the %s, peak %d during the failover", i, before[i][0], fault, peak)
		if peak > before[i][0]+goroutineLimit {
			t.Errorf("instance %d: goroutines peaked at %d during the failover, %d before (limit +%d)", i, peak, before[i][0], goroutineLimit)
		}
	}
	if silent {
		// The old master comes back as a replica of the promoted one; the
		// instances drop their connections to it without a leak.
		victim.Resume()
		checkNoLeak(t, gws, before)
		return gap, promotion
	}

	// Full enforcement after the promotion, on the promoted shard.
	if st, _ := statusOf(gws[2].URL("/v1/users/me"), pre.tk.Access); st != 401 {
		t.Errorf("a logout made before the failover is no longer enforced: %d", st)
	}
	for i, gw := range gws {
		if st, _ := statusOf(gw.URL("/v1/users/me"), pre.tk.Access); st != 401 {
			t.Errorf("instance %d: the logout made before the failover no longer enforced: %d", i, st)
		}
	}
	var lim *user
	for i := 0; lim == nil; i++ {
		if i == 30 {
			t.Fatal("no user with a bucket on the promoted shard in 30 tries")
		}
		if u := newUser(t, gws); dead.Serves(redistest.KeySlot(u.bucketKey("limited"))) {
			lim = u
		}
	}
	admitLimitAcross(t, gws, []*user{lim})
	// A logout whose revocation key lands on the promoted shard, then
	// others anywhere.
	var onPromoted *user
	for i := 0; onPromoted == nil; i++ {
		if i == 30 {
			t.Fatal("no session with its jti on the promoted shard in 30 logins")
		}
		if u := relogin(t, gws[i%len(gws)], lim.email); dead.Serves(redistest.KeySlot(u.revokedKey())) {
			onPromoted = u
		}
	}
	delays := logoutPropagation(t, gws, 0, false, onPromoted)
	for round := 1; round < 4; round++ {
		delays = append(delays, logoutPropagation(t, gws, round, false, nil)...)
	}
	reportPropagation(t, delays)
	checkNoLeak(t, gws, before)
	return gap, promotion
}

// waitOnReplica waits until master's replica holds key.
func waitOnReplica(t *testing.T, c *redistest.Cluster, master redistest.ClusterNode, key string) {
	t.Helper()
	nodes, err := c.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.MasterID != master.ID {
			continue
		}
		replica := c.Node(n.Addr)
		deadline := time.Now().Add(5 * time.Second)
		for {
			// SCAN is keyless: a replica answers it without MOVED.
			out, err := replica.DoList("SCAN", "0", "MATCH", key, "COUNT", "100000")
			if err == nil && len(out) > 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not on the replica %s after 5s: %v", key, n.Addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("no replica of %s", master.Addr)
}

// TestScaleOutSentinel runs two gatewayd processes on a master found
// through three sentinels, kills the master under load and checks the
// same: policies during the gap, enforcement after the promotion without a
// restart, no leak.
func TestScaleOutSentinel(t *testing.T) {
	requireClusterE2E(t)
	st := redistest.StartSentinel(t)
	section := fmt.Sprintf("redis:\n  sentinel: { master_set: %s, addrs: [%s] }\n  command_timeout: 1s\n  dial_timeout: 500ms",
		redistest.SentinelMasterSet, strings.Join(st.Addrs(), ", "))
	gws := startScaleOut(t, section, 2)

	admitLimitAcross(t, gws, []*user{newUser(t, gws)})
	var delays []time.Duration
	for round := range 4 {
		delays = append(delays, logoutPropagation(t, gws, round, round == 3, nil)...)
	}
	reportPropagation(t, delays)

	master, err := st.Master()
	if err != nil {
		t.Fatal(err)
	}
	u := newUser(t, gws)
	pre := relogin(t, gws[1], u.email)
	logout(t, gws[0], pre)
	var replica *redistest.Server
	for _, n := range st.DataNodes() {
		if n != master {
			replica = n
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _ := replica.Do("EXISTS", pre.revokedKey()); v == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation did not reach the replica in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Every key is on the one master: every closed and limit request is
	// affected.
	probes := []*probe{{name: "user", u: u, affected: map[string]bool{"open": true, "closed": true, "limit": true}}}
	stop := make(chan struct{})
	collect := runLoad(gws, probes, stop)
	time.Sleep(time.Second)
	before := make([][2]int, len(gws))
	for i, gw := range gws {
		before[i][0], before[i][1] = processStats(t, gw)
	}
	killed := time.Now()
	master.Kill()
	promoted, err := st.WaitFailover(master.Addr(), 30*time.Second)
	if err != nil {
		close(stop)
		collect()
		t.Fatal(err)
	}
	t.Logf("sentinels promoted %s %v after the kill (down-after-milliseconds %v)", promoted.Addr(), time.Since(killed).Round(time.Millisecond), redistest.SentinelDownAfter)
	time.Sleep(3 * time.Second)
	close(stop)
	failoverReport(t, collect(), probes, killed, len(gws), false)
	checkAlive(t, gws)

	for i, gw := range gws {
		if st, _ := statusOf(gw.URL("/v1/users/me"), pre.tk.Access); st != 401 {
			t.Errorf("instance %d: the logout made before the failover is no longer enforced: %d", i, st)
		}
	}
	admitLimitAcross(t, gws, []*user{newUser(t, gws)})
	delays = nil
	for round := range 2 {
		delays = append(delays, logoutPropagation(t, gws, round, false, nil)...)
	}
	reportPropagation(t, delays)
	checkNoLeak(t, gws, before)
}
