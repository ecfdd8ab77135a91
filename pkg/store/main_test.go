package store

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind, such as
// a shared call context's timer.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
