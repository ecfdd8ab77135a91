package ratelimit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind, such as
// a store call's timer still running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
