package redis_test

import (
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// The redis: section's guard settings reach the guard, and the defaults
// the configuration validates against are the guard's.
func TestGuardOptionsFromConfig(t *testing.T) {
	if config.DefaultRedisMaxInFlight != store.DefaultMaxInFlight {
		t.Fatalf("config.DefaultRedisMaxInFlight %d, store.DefaultMaxInFlight %d: validation would check max_concurrent_calls against the wrong cap",
			config.DefaultRedisMaxInFlight, store.DefaultMaxInFlight)
	}
	got := redis.GuardOptions(&config.Redis{
		MaxInFlight: 1000, MaxConcurrentCalls: 600, BreakerFailures: 7,
		BreakerCooldown: config.Duration(2 * time.Second), CommandTimeout: config.Duration(time.Second),
	})
	want := store.GuardOptions{MaxInFlight: 1000, MaxRunners: 600, BreakerFailures: 7, BreakerCooldown: 2 * time.Second, Hold: 2 * time.Second}
	if got != want {
		t.Fatalf("GuardOptions = %+v, want %+v", got, want)
	}
}
