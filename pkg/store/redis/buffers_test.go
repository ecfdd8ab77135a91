package redis_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
)

// TestCommandsLargerThanBuffers: with the default 64KiB read and write
// buffers, a command and a reply several times their size go through
// whole, and the pipelined connection keeps serving after them.
func TestCommandsLargerThanBuffers(t *testing.T) {
	srv := redistest.Start(t)
	s := connect(t, srv.Addr(), true)
	a := redis.NewAuth(s)
	ctx := context.Background()
	hash := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // 200KiB
	u := &store.User{ID: "uid-big", Email: "big@example.com", Role: "user", PasswordHash: hash, CreatedAt: time.UnixMilli(1_700_000_000_000)}
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := a.UserByID(ctx, "uid-big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.PasswordHash, hash) || got.Email != u.Email {
		t.Fatalf("read back %d bytes of hash, email %q; want the %d bytes written", len(got.PasswordHash), got.Email, len(hash))
	}
	if revoked, err := s.IsRevoked(ctx, []byte("jti"), []byte("uid-big"), 1, time.Second); err != nil || revoked {
		t.Fatalf("IsRevoked after the large reply = %v, %v", revoked, err)
	}
}
