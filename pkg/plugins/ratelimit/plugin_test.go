package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/gatewayd/gatewayd/internal/plugintest"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/gatewayd/gatewayd/pkg/store/storetest"
	"github.com/valyala/fasthttp"
)

const testPath = "routes[0].plugins[0].ratelimit"

// section parses a YAML snippet into the Section a factory receives; an
// empty snippet is a bare "ratelimit" entry.
func section(t testing.TB, src string) config.Section {
	t.Helper()
	return plugintest.Section(t, testPath, src)
}

// newMemory returns an in-process store on a clock moved by hand.
func newMemory(t testing.TB) (*memory.Store, *storetest.FakeClock) {
	c := storetest.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(c.Now))
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

func build(t testing.TB, route, src string, st store.Store) *Limiter {
	t.Helper()
	p, err := Factory{}.Build(section(t, src), &plugins.Env{Route: route, Store: st})
	if err != nil {
		t.Fatalf("Build(%q): %v", src, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p.(*Limiter)
}

func TestConfigErrors(t *testing.T) {
	st, _ := newMemory(t)
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"bare", "", []string{
			testPath + ".limit: is required: the number of tokens added per period",
			testPath + ".period: is required, e.g. 1s, 1m or 1h",
		}},
		{"limit missing", "period: 1m", []string{
			"gateway.yaml:1: " + testPath + ".limit: is required: the number of tokens added per period",
		}},
		{"limit zero", "period: 1m\nlimit: 0", []string{
			"gateway.yaml:2: " + testPath + ".limit: must be at least 1, got 0",
		}},
		{"limit negative", "limit: -5\nperiod: 1m", []string{
			"gateway.yaml:1: " + testPath + ".limit: must be at least 1, got -5",
		}},
		{"period missing", "limit: 5", []string{
			testPath + ".period: is required, e.g. 1s, 1m or 1h",
		}},
		{"sync unknown", "limit: 5\nperiod: 1m\nsync: leese", []string{
			"gateway.yaml:3: " + testPath + `.sync: must be exact or lease, got "leese", did you mean "lease"?`,
		}},
		{"sync empty", "limit: 5\nperiod: 1m\nsync: ''", []string{
			"gateway.yaml:3: " + testPath + `.sync: must be exact or lease, got ""`,
		}},
		{"period zero", "limit: 5\nperiod: 0s", []string{
			"gateway.yaml:2: " + testPath + ".period: must be a positive duration, got 0s",
		}},
		{"period too short", "limit: 5\nperiod: 500us", []string{
			testPath + ".period: must be at least 1ms, got 500µs",
		}},
		{"period without unit", "limit: 5\nperiod: 60", []string{
			testPath + `.period: duration "60" needs a unit, e.g. 60s`,
		}},
		{"burst zero", "limit: 5\nperiod: 1m\nburst: 0", []string{
			"gateway.yaml:3: " + testPath + ".burst: must be at least 1, got 0",
		}},
		{"burst too large", "limit: 1\nperiod: 24h\nburst: 100000000", []string{
			testPath + ".burst: 100000000 is too large for period 24h0m0s: at most 52124",
		}},
		{"cost zero", "limit: 5\nperiod: 1m\ncost: 0", []string{
			testPath + ".cost: must be at least 1, got 0",
		}},
		{"cost above burst", "limit: 5\nperiod: 1m\nburst: 3\ncost: 5", []string{
			"gateway.yaml:4: " + testPath + ".cost: cost 5 is larger than burst 3: no request could ever pass",
		}},
		{"cost above default burst", "limit: 10\nperiod: 1m\ncost: 11", []string{
			testPath + ".cost: cost 11 is larger than burst 10: no request could ever pass",
		}},
		{"unknown key kind", "key: bogus\nlimit: 5\nperiod: 1m", []string{
			"gateway.yaml:1: " + testPath + `.key: unknown key kind "bogus" (expected ip, user, route or header:NAME)`,
		}},
		{"key typo", "key: usr\nlimit: 5\nperiod: 1m", []string{
			testPath + `.key: unknown key kind "usr" (expected ip, user, route or header:NAME), did you mean "user"?`,
		}},
		{"bad kind in a list", "key: [ip, route, sub]\nlimit: 5\nperiod: 1m", []string{
			testPath + `.key[2]: unknown key kind "sub" (expected ip, user, route or header:NAME)`,
		}},
		{"header without name", "key: \"header:\"\nlimit: 5\nperiod: 1m", []string{
			testPath + `.key: header: needs a header name, e.g. header:X-API-Key, got "header:"`,
		}},
		{"header with bad name", "key: \"header:X Key\"\nlimit: 5\nperiod: 1m", []string{
			testPath + `.key: header: needs a header name, e.g. header:X-API-Key, got "header:X Key"`,
		}},
		{"duplicate kind", "key: [header:X-A, ip, header:x-a]\nlimit: 5\nperiod: 1m", []string{
			testPath + `.key[2]: duplicate key kind "header:x-a"`,
		}},
		{"empty key list", "key: []\nlimit: 5\nperiod: 1m", []string{
			testPath + ".key: must name at least one of ip, user, route or header:NAME",
		}},
		{"key mapping", "key: {ip: true}\nlimit: 5\nperiod: 1m", []string{
			testPath + ".key: expected a key kind or a list of them, got a mapping",
		}},
		{"unknown headers mode", "limit: 5\nperiod: 1m\nheaders: draft", []string{
			"gateway.yaml:3: " + testPath + `.headers: must be one of both, ietf, legacy or off, got "draft"`,
		}},
		{"unknown on_store_error", "limit: 5\nperiod: 1m\non_store_error: retry", []string{
			testPath + `.on_store_error: must be allow or deny, got "retry"`,
		}},
		{"zero store_timeout", "limit: 5\nperiod: 1m\nstore_timeout: 0s", []string{
			testPath + ".store_timeout: must be a positive duration, got 0s",
		}},
		{"empty bucket", "limit: 5\nperiod: 1m\nbucket: \"\"", []string{
			testPath + ".bucket: must not be empty",
		}},
		{"null bucket", "limit: 5\nperiod: 1m\nbucket:", []string{
			testPath + ".bucket: expected a string, got an empty value",
		}},
		{"unknown field", "limit: 5\nperiod: 1m\nbrust: 3", []string{
			"gateway.yaml:3: " + testPath + `.brust: unknown field "brust" (did you mean "burst"?)`,
		}},
		{"every mistake at once", "limit: 0\nperiod: 1m\nheaders: all\ncost: 0", []string{
			"gateway.yaml:1: " + testPath + ".limit: must be at least 1, got 0",
			"gateway.yaml:3: " + testPath + `.headers: must be one of both, ietf, legacy or off, got "all"`,
			"gateway.yaml:4: " + testPath + ".cost: must be at least 1, got 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(section(t, tt.give), &plugins.Env{Route: "users", Store: st})
			if err == nil {
				t.Fatalf("Build succeeded, want %q", tt.want)
			}
			got := config.Errors(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %q, want %d: %q", len(got), err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if g := got[i].Error(); !strings.HasSuffix(g, w) {
					t.Errorf("error %d = %q, want it to end with %q", i, g, w)
				}
				if _, ok := got[i].(*config.Error); !ok {
					t.Errorf("error %d is %T, want *config.Error", i, got[i])
				}
			}
		})
	}
}

// The plugin's bucket bound must equal both stores': converting a negative
// constant to uint64 does not compile, so these lines only build when the
// differences are zero both ways.
const (
	_ = uint64(MaxBucketUnits-memory.MaxUnits) + uint64(memory.MaxUnits-MaxBucketUnits)
	_ = uint64(MaxBucketUnits-redis.MaxUnits) + uint64(redis.MaxUnits-MaxBucketUnits)
)

func TestDefaults(t *testing.T) {
	st, _ := newMemory(t)
	l := build(t, "users", "limit: 100\nperiod: 1m", st)
	if l.rate != (store.Rate{Limit: 100, Period: time.Minute, Burst: 100}) || l.cost != 1 {
		t.Errorf("rate %+v cost %d, want burst = limit and cost 1", l.rate, l.cost)
	}
	if l.mode != headersBoth || !l.failOpen || l.timeout != DefaultStoreTimeout || l.name != "users" {
		t.Errorf("mode %v failOpen %v timeout %v name %q: want both, allow, 50ms, the route name",
			l.mode, l.failOpen, l.timeout, l.name)
	}
	if len(l.parts) != 1 || l.parts[0].kind != partIP {
		t.Errorf("parts %+v, want ip", l.parts)
	}
	if !l.local {
		t.Error("the memory store is not treated as local")
	}
	if l.sync != SyncExact || l.lease != nil {
		t.Errorf("sync %q lease %v, want exact without a lease limiter", l.sync, l.lease)
	}
}

// TestLeaseOnMemoryIsExact: the in-process store is already local, so
// sync: lease takes from it directly, exactly.
func TestLeaseOnMemoryIsExact(t *testing.T) {
	st, _ := newMemory(t)
	l := build(t, "users", "limit: 2\nperiod: 1h\nsync: lease", st)
	if l.sync != SyncLease || l.lease != nil || l.store != store.Limiter(st) {
		t.Fatalf("sync %q lease %v store %T, want lease taking from the memory store directly", l.sync, l.lease, l.store)
	}
	for i, want := range []plugins.Verdict{plugins.Next, plugins.Next, plugins.Done} {
		if v := newRequest("192.0.2.1").run(l); v != want {
			t.Fatalf("request %d: verdict %v, want %v", i, v, want)
		}
	}
}

func TestRequires(t *testing.T) {
	st, _ := newMemory(t)
	tests := []struct {
		give string
		want []string
	}{
		{"ip", nil},
		{"route", nil},
		{"header:X-API-Key", nil},
		{"user", []string{plugins.Identity}},
		{"[ip, user]", []string{plugins.Identity}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			l := build(t, "r", "key: "+tt.give+"\nlimit: 5\nperiod: 1m", st)
			if got := l.Requires(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("Requires() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	st, _ := newMemory(t)
	long := strings.Repeat("k", 200)
	sum := sha256.Sum256([]byte(long))
	tests := []struct {
		name        string
		giveSetting string
		giveIP      string // reqctx client IP; empty: the peer address 198.51.100.7
		giveSub     string // authenticated subject
		giveAnon    bool   // a subject without Authenticated
		giveHeaders map[string]string
		want        string
	}{
		{name: "ip", giveSetting: "key: ip", giveIP: "192.0.2.1", want: "users|ip:192.0.2.1"},
		{name: "ip defaults", giveSetting: "", giveIP: "192.0.2.1", want: "users|ip:192.0.2.1"},
		{name: "ipv6", giveSetting: "key: ip", giveIP: "2001:db8::1", want: "users|ip:2001:db8::1"},
		{name: "peer address without resolved ip", giveSetting: "key: ip", want: "users|ip:198.51.100.7"},
		{name: "user", giveSetting: "key: user", giveIP: "192.0.2.1", giveSub: "alice", want: "users|user:alice"},
		{name: "anonymous user falls back to ip", giveSetting: "key: user", giveIP: "192.0.2.1", want: "users|ip:192.0.2.1"},
		{name: "unverified subject is not used", giveSetting: "key: user", giveIP: "192.0.2.1", giveSub: "mallory", giveAnon: true, want: "users|ip:192.0.2.1"},
		{name: "header", giveSetting: "key: header:X-API-Key", giveIP: "192.0.2.1", giveHeaders: map[string]string{"x-api-key": "k1"}, want: "users|h:k1"},
		{name: "absent header falls back to ip", giveSetting: "key: header:X-API-Key", giveIP: "192.0.2.1", want: "users|ip:192.0.2.1"},
		{name: "route", giveSetting: "key: route", giveIP: "192.0.2.1", want: "users|route:users"},
		{name: "shared bucket", giveSetting: "key: [route, ip]\nbucket: shared", giveIP: "192.0.2.1", want: "shared|route:users|ip:192.0.2.1"},
		{name: "user and header", giveSetting: "key: [user, header:X-Tenant]", giveIP: "192.0.2.1", giveSub: "alice",
			giveHeaders: map[string]string{"X-Tenant": "acme"}, want: "users|user:alice|h:acme"},
		{name: "ip and user anonymous", giveSetting: "key: [ip, user]", giveIP: "192.0.2.1", want: "users|ip:192.0.2.1|ip:192.0.2.1"},
		{name: "separators escaped", giveSetting: "key: [header:X-A, header:X-B]", giveIP: "192.0.2.1",
			giveHeaders: map[string]string{"X-A": `a|h:b`, "X-B": `c\#`}, want: `users|h:a\|h:b|h:c\\\#`},
		{name: "long value hashed", giveSetting: "key: header:X-API-Key", giveIP: "192.0.2.1",
			giveHeaders: map[string]string{"X-API-Key": long}, want: "users|h:#" + hex.EncodeToString(sum[:16])},
		{name: "bucket name escaped", giveSetting: "bucket: 'a|b'", giveIP: "192.0.2.1", want: `a\|b|ip:192.0.2.1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := build(t, "users", tt.giveSetting+"\nlimit: 5\nperiod: 1m", st)
			var ctx fasthttp.RequestCtx
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000})
			for k, v := range tt.giveHeaders {
				ctx.Request.Header.Set(k, v)
			}
			s := reqctx.Acquire(&ctx)
			s.ClientIP = append(s.ClientIP[:0], tt.giveIP...)
			if tt.giveSub != "" {
				s.Identity.Subject = append(s.Identity.Subject[:0], tt.giveSub...)
				s.Authenticated = !tt.giveAnon
			}
			if got := string(l.appendKey(nil, &ctx, s)); got != tt.want {
				t.Fatalf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range [][]byte{headerPolicy, headerRateLimit, headerLimit, headerRemaining, headerReset, headerRetryAfter} {
		var h fasthttp.ResponseHeader
		h.SetBytesKV(name, []byte("v"))
		var got []string
		for k := range h.All() {
			got = append(got, string(k))
		}
		if len(got) == 0 || got[len(got)-1] != string(name) {
			t.Errorf("fasthttp stores %q as %q: the constant must be canonical", name, got)
		}
	}
}

func TestHeaderKeyWarnings(t *testing.T) {
	const advisory = ": warning: a limit keyed on X-API-Key is advisory: no authentication plugin (jwt or api-key without optional) comes before this ratelimit, " +
		"so a client gets a fresh bucket by sending another X-API-Key value; authenticate first, or key on ip or user"
	tests := []struct {
		name              string
		give              string
		giveAuthenticated bool
		want              []string
	}{
		{
			name: "header key",
			give: "key: header:X-API-Key\nlimit: 5\nperiod: 1m",
			want: []string{"gateway.yaml:1: " + testPath + ".key" + advisory},
		},
		{
			name: "header in a key list",
			give: "key: [ip, header:X-API-Key]\nlimit: 5\nperiod: 1m",
			want: []string{"gateway.yaml:1: " + testPath + ".key[1]" + advisory},
		},
		{
			name:              "after authentication",
			give:              "key: [user, header:X-API-Key]\nlimit: 5\nperiod: 1m",
			giveAuthenticated: true,
		},
		{
			name: "ip key",
			give: "key: ip\nlimit: 5\nperiod: 1m",
		},
		{
			name: "user key",
			give: "key: [user, route]\nlimit: 5\nperiod: 1m",
		},
	}
	st, _ := newMemory(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			env := &plugins.Env{Route: "warn", Store: st, Authenticated: tt.giveAuthenticated,
				Warn: func(w *config.Warning) { got = append(got, w.String()) }}
			if _, err := (Factory{}).Build(section(t, tt.give), env); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
