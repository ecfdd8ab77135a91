//go:build !race

package redis

import "testing"

func TestScriptArgsCachedDoesNotAllocate(t *testing.T) {
	scriptArgs(20_000_000, 1_000_000, 1_000_000, 10)
	allocs := testing.AllocsPerRun(1000, func() {
		scriptArgs(20_000_000, 1_000_000, 1_000_000, 10)
	})
	if allocs != 0 {
		t.Errorf("scriptArgs allocates %.1f times per cached call, want 0", allocs)
	}
}

func TestRevocationKeysAllocateOnce(t *testing.T) {
	jti, subject := []byte("0b7e2d3c-token"), []byte("user-1")
	allocs := testing.AllocsPerRun(1000, func() {
		revocationKeys(jti, subject)
	})
	if allocs != 1 {
		t.Errorf("revocationKeys allocates %.1f times, want 1", allocs)
	}
}
