package authserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
)

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// TestStoreUsers checks the UserStore contract on both stores.
func TestStoreUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, _ := b.open(t)
		ctx := context.Background()
		created := time.UnixMilli(time.Now().UnixMilli())
		u := &store.User{ID: "u1", Email: "a@example.com", Role: "admin", PasswordHash: []byte("$2a$04$hash"), CreatedAt: created}
		if err := users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for _, dup := range []*store.User{
			{ID: "u2", Email: "a@example.com", Role: "user"},
			{ID: "u1", Email: "b@example.com", Role: "user"},
		} {
			if err := users.CreateUser(ctx, dup); !errors.Is(err, store.ErrExists) {
				t.Fatalf("CreateUser(%s, %s) = %v, want ErrExists", dup.ID, dup.Email, err)
			}
		}
		// The refused duplicates left nothing behind.
		if _, err := users.UserByEmail(ctx, "b@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UserByEmail(b) = %v, want ErrNotFound", err)
		}
		if _, err := users.UserByID(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UserByID(u2) = %v, want ErrNotFound", err)
		}
		for _, get := range []func() (*store.User, error){
			func() (*store.User, error) { return users.UserByEmail(ctx, "a@example.com") },
			func() (*store.User, error) { return users.UserByID(ctx, "u1") },
		} {
			got, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != u.ID || got.Email != u.Email || got.Role != u.Role ||
				!bytes.Equal(got.PasswordHash, u.PasswordHash) || !got.CreatedAt.Equal(created) {
				t.Fatalf("got %+v, want %+v", got, u)
			}
		}
		if err := users.SetPasswordHash(ctx, "u1", []byte("new")); err != nil {
			t.Fatal(err)
		}
		if got, _ := users.UserByEmail(ctx, "a@example.com"); string(got.PasswordHash) != "new" {
			t.Fatalf("hash = %q after SetPasswordHash", got.PasswordHash)
		}
		if err := users.SetPasswordHash(ctx, "missing", []byte("x")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("SetPasswordHash(missing) = %v, want ErrNotFound", err)
		}
	})
}

// TestStoreRotateOutcomes walks a session through every outcome.
func TestStoreRotateOutcomes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, _ := b.open(t)
		ctx := context.Background()
		now := time.Now()
		exp := now.Add(time.Hour)
		for _, s := range []*store.Session{
			{ID: "s1", UserID: "u", TokenHash: hashOf("r1"), ExpiresAt: exp},
			{ID: "s2", UserID: "u", TokenHash: hashOf("x1"), ExpiresAt: exp},
			{ID: "s3", UserID: "other", TokenHash: hashOf("o1"), ExpiresAt: exp},
		} {
			if err := users.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		rotate := func(sid, user, old, next string, at time.Time) store.RotateResult {
			t.Helper()
			res, err := users.RotateSession(ctx, &store.Rotation{
				UserID: user, SessionID: sid, OldHash: hashOf(old), NewHash: hashOf(next),
				Successor: []byte("blob-" + next), Now: at, Grace: time.Second, ExpiresAt: exp,
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		if got := rotate("s1", "u", "r1", "r2", now); got.Outcome != store.Rotated {
			t.Fatalf("first rotation = %v", got.Outcome)
		}
		got := rotate("s1", "u", "r1", "r2-bis", now.Add(500*time.Millisecond))
		if got.Outcome != store.RotateRetried || string(got.Successor) != "blob-r2" {
			t.Fatalf("retry in grace = %v %q, want retried blob-r2", got.Outcome, got.Successor)
		}
		if got := rotate("s1", "u", "r2", "r3", now); got.Outcome != store.Rotated {
			t.Fatalf("rotation of the successor = %v", got.Outcome)
		}
		if got := rotate("missing", "u", "r1", "zz", now); got.Outcome != store.RotateNotFound {
			t.Fatalf("missing session = %v", got.Outcome)
		}
		// r1 is now two generations old: reuse, and every session of u goes.
		if got := rotate("s1", "u", "r1", "zz", now); got.Outcome != store.RotateReused {
			t.Fatalf("old token = %v, want reused", got.Outcome)
		}
		for _, sid := range []string{"s1", "s2"} {
			if got := rotate(sid, "u", "r3", "zz", now); got.Outcome != store.RotateNotFound {
				t.Fatalf("session %s after reuse = %v, want not found", sid, got.Outcome)
			}
		}
		if got := rotate("s3", "other", "o1", "o2", now); got.Outcome != store.Rotated {
			t.Fatalf("another user's session = %v, want rotated", got.Outcome)
		}
		// The previous token after the grace is reuse too.
		if got := rotate("s3", "other", "o1", "o9", now.Add(2*time.Second)); got.Outcome != store.RotateReused {
			t.Fatalf("previous token after the grace = %v, want reused", got.Outcome)
		}
		// An expired session is gone.
		if err := users.CreateSession(ctx, &store.Session{ID: "s4", UserID: "u", TokenHash: hashOf("e1"), ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if got := rotate("s4", "u", "e1", "e2", now.Add(2*time.Minute)); got.Outcome != store.RotateNotFound {
			t.Fatalf("expired session = %v, want not found", got.Outcome)
		}
		// Delete one and all.
		for _, s := range []string{"d1", "d2"} {
			if err := users.CreateSession(ctx, &store.Session{ID: s, UserID: "u", TokenHash: hashOf(s), ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		if err := users.DeleteSession(ctx, "u", "d1"); err != nil {
			t.Fatal(err)
		}
		if got := rotate("d1", "u", "d1", "n", now); got.Outcome != store.RotateNotFound {
			t.Fatalf("deleted session = %v", got.Outcome)
		}
		if err := users.DeleteUserSessions(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if got := rotate("d2", "u", "d2", "n", now); got.Outcome != store.RotateNotFound {
			t.Fatalf("session after DeleteUserSessions = %v", got.Outcome)
		}
	})
}

// TestStoreRotateConcurrent: of many concurrent rotations of one token
// exactly one rotates; the rest are retries handed the winner's blob.
func TestStoreRotateConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, _ := b.open(t)
		ctx := context.Background()
		now := time.Now()
		if err := users.CreateSession(ctx, &store.Session{ID: "s", UserID: "u", TokenHash: hashOf("r1"), ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		const n = 16
		results := make([]store.RotateResult, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				res, err := users.RotateSession(ctx, &store.Rotation{
					UserID: "u", SessionID: "s", OldHash: hashOf("r1"), NewHash: hashOf("r2-" + strconv.Itoa(i)),
					Successor: []byte(strconv.Itoa(i)), Now: now, Grace: time.Minute, ExpiresAt: now.Add(time.Hour),
				})
				if err != nil {
					t.Error(err)
				}
				results[i] = res
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, r := range results {
			if r.Outcome == store.Rotated {
				if winner >= 0 {
					t.Fatalf("rotations %d and %d both won", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no rotation won")
		}
		for i, r := range results {
			if i != winner && (r.Outcome != store.RotateRetried || string(r.Successor) != strconv.Itoa(winner)) {
				t.Fatalf("rotation %d = %v %q, want retried with the winner's blob %d", i, r.Outcome, r.Successor, winner)
			}
		}
	})
}

// TestStoreLockouts checks the Lockouts contract on both stores.
func TestStoreLockouts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, _ := b.open(t)
		ctx := context.Background()
		p := store.LockoutPolicy{MaxFailures: 2, Window: time.Minute}
		for i := range 2 {
			if d, err := users.ReserveFailure(ctx, "k", p); err != nil || d != 0 {
				t.Fatalf("reservation %d refused for %v, %v", i+1, d, err)
			}
			if i == 0 {
				if d, err := users.LockedFor(ctx, "k", p); err != nil || d != 0 {
					t.Fatalf("LockedFor after one failure = %v, %v", d, err)
				}
			}
		}
		// The second reservation reached the limit: the key is locked for
		// about the window, and a third attempt is refused uncounted.
		if d, err := users.LockedFor(ctx, "k", p); err != nil || d <= 50*time.Second || d > time.Minute {
			t.Fatalf("LockedFor = %v, %v; want about the window", d, err)
		}
		d, err := users.ReserveFailure(ctx, "k", p)
		if err != nil || d <= 50*time.Second || d > time.Minute {
			t.Fatalf("reservation on a locked key = %v, %v; want refused for about the window", d, err)
		}
		if d, _ := users.LockedFor(ctx, "other", p); d != 0 {
			t.Fatalf("an unrelated key is locked for %v", d)
		}
		if err := users.ResetFailures(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if d, _ := users.LockedFor(ctx, "k", p); d != 0 {
			t.Fatalf("locked for %v after reset", d)
		}
		if d, err := users.ReserveFailure(ctx, "k", p); err != nil || d != 0 {
			t.Fatalf("reservation after reset = %v, %v; want admitted", d, err)
		}
		if err := users.ResetFailures(ctx, "never-failed"); err != nil {
			t.Fatal(err)
		}
		// Failures older than the window are forgotten.
		// The window is long enough that a slow disk (bbolt syncs every
		// write) cannot make the lock lapse between two calls.
		short := store.LockoutPolicy{MaxFailures: 2, Window: 400 * time.Millisecond}
		if _, err := users.ReserveFailure(ctx, "s", short); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		for i := range 2 {
			if d, _ := users.ReserveFailure(ctx, "s", short); d != 0 {
				t.Fatalf("reservation %d after the window refused for %v", i+1, d)
			}
		}
		// The lock lasts the window, then the key starts afresh.
		if d, _ := users.ReserveFailure(ctx, "s", short); d <= 0 {
			t.Fatal("a locked key admitted a reservation")
		}
		time.Sleep(500 * time.Millisecond)
		if d, _ := users.ReserveFailure(ctx, "s", short); d != 0 {
			t.Fatalf("reservation after the lock expired refused for %v", d)
		}
	})
}

// TestStoreLockoutsConcurrent: of many reservations fired at once against
// one key, exactly MaxFailures are admitted and the rest are refused with
// the lock, on every store.
func TestStoreLockoutsConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, _ := b.open(t)
		p := store.LockoutPolicy{MaxFailures: 5, Window: time.Minute}
		const n = 40
		var admitted, refused atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				d, err := users.ReserveFailure(context.Background(), "race@example.com", p)
				switch {
				case err != nil:
					t.Error(err)
				case d == 0:
					admitted.Add(1)
				default:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if admitted.Load() != int32(p.MaxFailures) || refused.Load() != n-int32(p.MaxFailures) {
			t.Fatalf("%d reservations at once: %d admitted, %d refused; want %d admitted",
				n, admitted.Load(), refused.Load(), p.MaxFailures)
		}
		if d, err := users.LockedFor(context.Background(), "race@example.com", p); err != nil || d <= 0 {
			t.Fatalf("LockedFor after the race = %v, %v; want locked", d, err)
		}
	})
}
