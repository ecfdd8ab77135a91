package authserver

import (
	"context"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store/memory"
)

// TestRevokeAllMarkSeconds checks the revoke-all ordering with whole-second
// iat, against the in-process store the blacklist plugin reads: a token
// issued anywhere in the second of the logout-all, before it, is revoked; a
// token issued once the call has waited past its mark is not.
func TestRevokeAllMarkSeconds(t *testing.T) {
	st := memory.New()
	defer st.Close()
	ctx := context.Background()
	base := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name       string
		giveCall   time.Duration // offset of the logout-all within its second
		giveIssued time.Duration // offset of the token's issue time
		wantRevoke bool
	}{
		{name: "issued the second before", giveCall: 100 * time.Millisecond, giveIssued: -500 * time.Millisecond, wantRevoke: true},
		{name: "issued earlier in the same second", giveCall: 900 * time.Millisecond, giveIssued: 100 * time.Millisecond, wantRevoke: true},
		{name: "issued the same millisecond", giveCall: 500 * time.Millisecond, giveIssued: 500 * time.Millisecond, wantRevoke: true},
		{name: "issued at the start of the next second", giveCall: 999 * time.Millisecond, giveIssued: time.Second, wantRevoke: false},
		{name: "issued right after a call at a second's start", giveCall: 0, giveIssued: time.Second, wantRevoke: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := []byte{'u', byte('a' + i)}
			call := base.Add(tt.giveCall)
			mark := revokeAllMark(call)
			if err := st.RevokeAll(ctx, string(sub), mark, time.Hour); err != nil {
				t.Fatal(err)
			}
			// What issue() writes: the issue time truncated to its second.
			iatMs := base.Add(tt.giveIssued).Unix() * 1000
			got, err := st.IsRevoked(ctx, nil, sub, iatMs, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantRevoke {
				t.Errorf("revoked = %v, want %v (mark %s, iat %d)", got, tt.wantRevoke, mark.Format(time.RFC3339Nano), iatMs)
			}
		})
	}
}

// TestWaitPastMark checks that a logout-all answers only once the clock has
// left the mark's second, so the next token's iat is a later second.
func TestWaitPastMark(t *testing.T) {
	mark := revokeAllMark(time.Now())
	waitPastMark(mark)
	if now := time.Now(); now.Unix()*1000 <= mark.UnixMilli() {
		t.Fatalf("returned at %s, still within the mark %s", now.Format(time.RFC3339Nano), mark.Format(time.RFC3339Nano))
	}
}
