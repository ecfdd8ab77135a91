package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

//go:embed ratelimit.lua
var rateLua string

// rateScript is loaded once per server: Exec sends EVALSHA and falls back
// to EVAL (which caches the script again) when the server answers NOSCRIPT.
var rateScript = rueidis.NewLuaScript(rateLua)

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
func (s *Store) Take(ctx context.Context, key []byte, r store.Rate, cost int64) (store.Result, error) {
	capU, costU, unit, rate, ok := units(r, cost)
	if !ok {
		return store.Result{}, ErrInvalidRate
	}
	vals, err := rateScript.Exec(ctx, s.client,
		[]string{RateKey(key)},
		[]string{
			strconv.FormatInt(capU, 10), strconv.FormatInt(costU, 10),
			strconv.FormatInt(unit, 10), strconv.FormatInt(rate, 10),
		}).AsIntSlice()
	if err != nil {
		return store.Result{}, wrapErr("ratelimit", err)
	}
	if len(vals) != 4 {
		return store.Result{}, fmt.Errorf("redis: ratelimit: script returned %d values, want 4", len(vals))
	}
	return store.Result{
		Allowed:    vals[0] == 1,
		Remaining:  vals[1],
		Reset:      time.Duration(vals[2]) * time.Microsecond,
		RetryAfter: time.Duration(vals[3]) * time.Microsecond,
	}, nil
}
