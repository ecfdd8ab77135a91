package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

// bucketLua holds what ratelimit.lua and lease.lua share (integer
// division, the server's clock); each script is built as it followed by
// the script itself.
//
//go:embed bucket.lua
var bucketLua string

//go:embed ratelimit.lua
var rateLua string

// rateScript is loaded once per server: Exec sends EVALSHA and falls back
// to EVAL (which caches the script again) when the server answers NOSCRIPT.
var rateScript = rueidis.NewLuaScript(bucketLua + rateLua)

// MaxUnits bounds Burst × Period in microseconds (token-microseconds): the
// script computes in Lua numbers, which are doubles, exact below 2^53.
const MaxUnits = 1 << 52

// ErrInvalidRate is returned by Take for a rate or cost outside what a
// bucket can represent: Limit, Burst and cost at least 1, Period at least
// one microsecond, cost at most Burst and Burst × Period at most MaxUnits.
var ErrInvalidRate = errors.New("redis: invalid rate or cost")

// RateKeyPrefix starts every bucket key; the bucket id follows, then "}".
const RateKeyPrefix = "gatewayd:rl:{"

// RateKey returns the Redis key of the bucket id.
func RateKey(id []byte) string { return RateKeyPrefix + string(id) + "}" }

// units converts a rate and cost to the script's integer units: a token is
// unit units, rate units are added per microsecond, the bucket holds capU.
func units(r store.Rate, cost int64) (capU, costU, unit, rate int64, ok bool) {
	unit = r.Period.Microseconds()
	if r.Limit < 1 || r.Burst < 1 || unit < 1 || cost < 1 || cost > r.Burst || r.Burst > MaxUnits/unit {
		return 0, 0, 0, 0, false
	}
	return r.Burst * unit, cost * unit, unit, r.Limit, true
}

// Take refills the bucket at key and takes cost tokens if it holds them, in
// one script run on the server's clock. Durations are exact to the
// microsecond and rounded up.
//
// In steady state a Take allocates nothing of its own: the key goes out
// from a pooled buffer (scriptCall), the arguments from scriptArgs, and the
// script answers with one integer, the bucket's level (see decodeTake),
// which rueidis reads without allocating (an array reply would cost one
// allocation per call).
func (s *Store) Take(ctx context.Context, key []byte, r store.Rate, cost int64) (store.Result, error) {
	capU, costU, unit, rate, ok := units(r, cost)
	if !ok {
		return store.Result{}, ErrInvalidRate
	}
	c := newScriptCall(key)
	keys, _ := c.build()
	msg, err := rateScript.Exec(ctx, s.client, keys, scriptArgs(capU, costU, unit, rate)).ToMessage()
	c.done(err)
	if err != nil {
		return store.Result{}, wrapErr("ratelimit", err)
	}
	if msg.IsInt64() {
		v, _ := msg.AsInt64()
		return decodeTake(v, capU, costU, unit, rate), nil
	}
	vals, err := msg.ToArray()
	if err != nil {
		return store.Result{}, wrapErr("ratelimit", err)
	}
	if len(vals) != 4 {
		return store.Result{}, fmt.Errorf("redis: ratelimit: script returned %d values, want 4", len(vals))
	}
	// Read in place: the reply's own array, no []int64 copy.
	var n [4]int64
	for i := range vals {
		if n[i], err = vals[i].AsInt64(); err != nil {
			return store.Result{}, wrapErr("ratelimit", err)
		}
	}
	return store.Result{
		Allowed:    n[0] == 1,
		Remaining:  n[1],
		Reset:      time.Duration(n[2]) * time.Microsecond,
		RetryAfter: time.Duration(n[3]) * time.Microsecond,
	}, nil
}

// decodeTake is the Result of the rate script's integer reply v: the
// bucket's level in units after the take, level when the take was
// allowed, −level−1 when it was refused. The level is between 0 and capU
// (at most MaxUnits = 2^52), so both forms are integers Lua's doubles hold
// exactly, for every rate units accepts. The script computes the rest from
// the level exactly as decodeTake does; it answers with the 4-value array
// instead only when the server clock stepped back since the bucket's last
// update, which adds the step to both durations.
func decodeTake(v, capU, costU, unit, rate int64) store.Result {
	allowed := v >= 0
	level := v
	if !allowed {
		level = -v - 1
	}
	res := store.Result{
		Allowed:   allowed,
		Remaining: level / unit,
		Reset:     time.Duration(ceilDiv(capU-level, rate)) * time.Microsecond,
	}
	if !allowed {
		res.RetryAfter = time.Duration(ceilDiv(costU-level, rate)) * time.Microsecond
	}
	return res
}

// ceilDiv is ⌈a / b⌉ for a ≥ 0, b > 0, for any b (no a + b overflow).
func ceilDiv(a, b int64) int64 {
	q := a / b
	if q*b < a {
		q++
	}
	return q
}

// argsCacheSize is the number of argument lists scriptArgs keeps, a power
// of two. A limiter plugin uses one (rate, cost), so a handful of slots
// cover a configuration; two pairs that share a slot take turns in it.
const argsCacheSize = 64

// scriptArg is one formatted argument list of the rate script; it is never
// modified once published.
type scriptArg struct {
	units [4]int64
	args  []string
}

// argsCache maps the script's four integer arguments to their decimal
// strings, so a Take in steady state formats nothing.
var argsCache [argsCacheSize]atomic.Pointer[scriptArg]

// scriptArgs returns the rate script's arguments capU, costU, unit and rate
// in decimal. The slice is shared: callers only read it.
func scriptArgs(capU, costU, unit, rate int64) []string {
	u := [4]int64{capU, costU, unit, rate}
	h := uint64(capU)*0x9e3779b97f4a7c15 ^ uint64(costU)*0xc2b2ae3d27d4eb4f ^
		uint64(unit)*0x165667b19e3779f9 ^ uint64(rate)*0x27d4eb2f165667c5
	slot := &argsCache[(h^h>>32)&(argsCacheSize-1)]
	if e := slot.Load(); e != nil && e.units == u {
		return e.args
	}
	e := &scriptArg{units: u, args: []string{
		strconv.FormatInt(capU, 10), strconv.FormatInt(costU, 10),
		strconv.FormatInt(unit, 10), strconv.FormatInt(rate, 10),
	}}
	slot.Store(e)
	return e.args
}
