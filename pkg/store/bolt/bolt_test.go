package bolt

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestPersistsAcrossReopen: users and sessions survive closing the file,
// which is created with its parent directories and private permissions.
func TestPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "data", "users.db")
	ctx := context.Background()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{ID: "u1", Email: "a@example.com", Role: "admin", PasswordHash: []byte("h"), CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	if err := s.CreateSession(ctx, &store.Session{ID: "s1", UserID: "u1", TokenHash: []byte("t1"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("file mode = %v, want 0600", perm)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.UserByID(ctx, "u1")
	if err != nil || got.Email != "a@example.com" || got.Role != "admin" {
		t.Fatalf("user after reopen = %+v, %v", got, err)
	}
	res, err := s.RotateSession(ctx, &store.Rotation{
		UserID: "u1", SessionID: "s1", OldHash: []byte("t1"), NewHash: []byte("t2"),
		Now: time.Now(), Grace: time.Second, ExpiresAt: exp,
	})
	if err != nil || res.Outcome != store.Rotated {
		t.Fatalf("rotate after reopen = %v, %v", res.Outcome, err)
	}
}

func count(t *testing.T, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweep(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	for _, sess := range []*store.Session{
		{ID: "short", UserID: "u", TokenHash: []byte("a"), ExpiresAt: now.Add(time.Minute)},
		{ID: "long", UserID: "u", TokenHash: []byte("b"), ExpiresAt: now.Add(time.Hour)},
	} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ReserveFailure(ctx, "x@example.com", store.LockoutPolicy{MaxFailures: 3, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(now.Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, bucketSessions); n != 1 {
		t.Fatalf("sessions after sweep = %d, want 1", n)
	}
	if n := count(t, s, bucketLockouts); n != 0 {
		t.Fatalf("lockouts after sweep = %d, want 0", n)
	}
}
