package redis

import (
	"testing"
	"time"
)

// TestAnswersTracked: an absent key's entry allows a plain re-read until
// retrackAfter after its last read through the cache; a present key's
// never does; sweeps keep what can still be re-read.
func TestAnswersTracked(t *testing.T) {
	a := newAnswers(1 << 20)
	now := time.Now().UnixNano()
	old := now - int64(retrackAfter)
	recent := now - int64(retrackAfter)/2
	expired := now - int64(time.Second)
	a.store(true, []byte("recent"), 0, answer{read: expired, until: expired, tracked: recent})
	a.store(true, []byte("old"), 0, answer{read: expired, until: expired, tracked: old})
	a.store(true, []byte("present"), 0, answer{read: expired, until: expired, tracked: recent, present: true})
	tests := []struct {
		give   string
		wantOK bool
	}{
		{"recent", true}, {"old", false}, {"present", false}, {"unknown", false},
	}
	for _, tt := range tests {
		tracked, ok := a.tracked(true, []byte(tt.give), now)
		if ok != tt.wantOK || ok && tracked != recent {
			t.Errorf("tracked(%q) = %d, %v; want %v", tt.give, tracked, ok, tt.wantOK)
		}
	}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		sh.sweep(now, a.limit)
		sh.mu.Unlock()
	}
	if _, ok := a.tracked(true, []byte("recent"), now); !ok || a.len() != 1 {
		t.Errorf("after a sweep: %d entries, recent kept %v; want only it", a.len(), ok)
	}
}
