// Package bolt is the embedded implementation of store.AuthStore: users,
// refresh sessions and login lockouts in one bbolt file (users_file), used
// when the auth service runs without Redis.
//
// Why bbolt: it is pure Go (no cgo, unlike SQLite), a single file with no
// server or background compaction (unlike Badger's LSM tree), and its
// copy-on-write B+tree commits are fsynced and crash-safe, so accounts
// survive restarts and power loss. Its one writer at a time is exactly what
// refresh rotation needs: the check-and-rotate of a refresh token runs in
// one Update transaction, so two concurrent refreshes of one token can never
// both win. Write volume (signups, logins, refreshes) is small, so the
// single writer is no bottleneck. The file is locked while open: a second
// process using the same file fails to open it after a short wait.
//
// Buckets: "users" (id → JSON user), "emails" (email → id), "sessions"
// (user id + 0x00 + session id → JSON session), "lockouts" (email → JSON
// counter). Expired sessions and lockouts are deleted when touched and by a
// sweep at open and every SweepInterval.
package bolt

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"go.etcd.io/bbolt"
)

// SweepInterval is how often expired sessions and lockouts are deleted.
const SweepInterval = 10 * time.Minute

// openTimeout bounds the wait for the file lock held by another process.
const openTimeout = 2 * time.Second

var (
	bucketUsers    = []byte("users")
	bucketEmails   = []byte("emails")
	bucketSessions = []byte("sessions")
	bucketLockouts = []byte("lockouts")
)

// Store is a bbolt-backed store.AuthStore. It is safe for concurrent use.
type Store struct {
	db   *bbolt.DB
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

var _ store.AuthStore = (*Store)(nil)

// Open opens (or creates, with its parent directories) the database file at
// path.
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bolt: create directory: %w", err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketEmails, bucketSessions, bucketLockouts} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: create buckets: %w", err)
	}
	s := &Store{db: db, stop: make(chan struct{})}
	if err := s.Sweep(time.Now()); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.wg.Add(1)
	go s.sweepLoop()
	return s, nil
}

// Close stops the sweeper and closes the file.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		err = s.db.Close()
	})
	return err
}

func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			// A failed sweep is retried at the next tick; the records it
			// would delete are ignored as expired meanwhile.
			_ = s.Sweep(now)
		}
	}
}

// Sweep deletes the sessions and lockouts expired at now.
func (s *Store) Sweep(now time.Time) error {
	nowMs := now.UnixMilli()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var dead [][]byte
		c := tx.Bucket(bucketSessions).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r sessionRecord
			if json.Unmarshal(v, &r) != nil || r.Expires <= nowMs {
				dead = append(dead, k)
			}
		}
		if err := deleteKeys(tx.Bucket(bucketSessions), dead); err != nil {
			return err
		}
		dead = dead[:0]
		c = tx.Bucket(bucketLockouts).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var r lockoutRecord
			if json.Unmarshal(v, &r) != nil || r.Expires <= nowMs {
				dead = append(dead, k)
			}
		}
		return deleteKeys(tx.Bucket(bucketLockouts), dead)
	})
	if err != nil {
		return fmt.Errorf("bolt: sweep: %w", err)
	}
	return nil
}

func deleteKeys(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

type userRecord struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	Hash      []byte `json:"hash"`
	CreatedMs int64  `json:"created"`
}

func (r *userRecord) user() *store.User {
	return &store.User{
		ID: r.ID, Email: r.Email, Role: r.Role, PasswordHash: r.Hash,
		CreatedAt: time.UnixMilli(r.CreatedMs),
	}
}

// CreateUser implements store.UserStore.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, err := json.Marshal(&userRecord{
		ID: u.ID, Email: u.Email, Role: u.Role, Hash: u.PasswordHash, CreatedMs: u.CreatedAt.UnixMilli(),
	})
	if err != nil {
		return fmt.Errorf("bolt: encode user: %w", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		emails, users := tx.Bucket(bucketEmails), tx.Bucket(bucketUsers)
		if emails.Get([]byte(u.Email)) != nil || users.Get([]byte(u.ID)) != nil {
			return store.ErrExists
		}
		if err := users.Put([]byte(u.ID), rec); err != nil {
			return err
		}
		return emails.Put([]byte(u.Email), []byte(u.ID))
	})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("bolt: create user: %w", err)
	}
	return err
}

func getUser(tx *bbolt.Tx, id []byte) (*userRecord, error) {
	v := tx.Bucket(bucketUsers).Get(id)
	if v == nil {
		return nil, store.ErrNotFound
	}
	var r userRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("bolt: decode user: %w", err)
	}
	return &r, nil
}

// UserByEmail implements store.UserStore.
func (s *Store) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *store.User
	err := s.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketEmails).Get([]byte(email))
		if id == nil {
			return store.ErrNotFound
		}
		r, err := getUser(tx, id)
		if err != nil {
			return err
		}
		u = r.user()
		return nil
	})
	return u, err
}

// UserByID implements store.UserStore.
func (s *Store) UserByID(ctx context.Context, id string) (*store.User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var u *store.User
	err := s.db.View(func(tx *bbolt.Tx) error {
		r, err := getUser(tx, []byte(id))
		if err != nil {
			return err
		}
		u = r.user()
		return nil
	})
	return u, err
}

// SetPasswordHash implements store.UserStore.
func (s *Store) SetPasswordHash(ctx context.Context, id string, hash []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		r, err := getUser(tx, []byte(id))
		if err != nil {
			return err
		}
		r.Hash = hash
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("bolt: encode user: %w", err)
		}
		return tx.Bucket(bucketUsers).Put([]byte(id), v)
	})
}

type sessionRecord struct {
	Current   []byte `json:"c"`
	Previous  []byte `json:"p,omitempty"`
	RotatedMs int64  `json:"r,omitempty"`
	Successor []byte `json:"s,omitempty"`
	Expires   int64  `json:"e"`
}

func sessionKey(userID, sessionID string) []byte {
	k := make([]byte, 0, len(userID)+1+len(sessionID))
	k = append(k, userID...)
	k = append(k, 0)
	return append(k, sessionID...)
}

// CreateSession implements store.SessionStore.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(&sessionRecord{Current: sess.TokenHash, Expires: sess.ExpiresAt.UnixMilli()})
	if err != nil {
		return fmt.Errorf("bolt: encode session: %w", err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Put(sessionKey(sess.UserID, sess.ID), v)
	})
	if err != nil {
		return fmt.Errorf("bolt: create session: %w", err)
	}
	return nil
}

// RotateSession implements store.SessionStore in one Update transaction;
// bbolt runs one writer at a time, so concurrent rotations are serialised.
func (s *Store) RotateSession(ctx context.Context, r *store.Rotation) (store.RotateResult, error) {
	if err := ctx.Err(); err != nil {
		return store.RotateResult{}, err
	}
	var res store.RotateResult
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		key := sessionKey(r.UserID, r.SessionID)
		v := b.Get(key)
		if v == nil {
			res.Outcome = store.RotateNotFound
			return nil
		}
		var rec sessionRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode session: %w", err)
		}
		now := r.Now.UnixMilli()
		switch {
		case rec.Expires <= now:
			res.Outcome = store.RotateNotFound
			return b.Delete(key)
		case subtle.ConstantTimeCompare(rec.Current, r.OldHash) == 1:
			rec.Previous, rec.Current = rec.Current, r.NewHash
			rec.RotatedMs, rec.Successor = now, r.Successor
			rec.Expires = r.ExpiresAt.UnixMilli()
			nv, err := json.Marshal(&rec)
			if err != nil {
				return fmt.Errorf("encode session: %w", err)
			}
			res.Outcome = store.Rotated
			return b.Put(key, nv)
		case len(rec.Previous) > 0 && subtle.ConstantTimeCompare(rec.Previous, r.OldHash) == 1 &&
			now-rec.RotatedMs <= r.Grace.Milliseconds():
			res.Outcome, res.Successor = store.RotateRetried, rec.Successor
			return nil
		default:
			res.Outcome = store.RotateReused
			return deleteUserSessions(b, r.UserID)
		}
	})
	if err != nil {
		return store.RotateResult{}, fmt.Errorf("bolt: rotate session: %w", err)
	}
	return res, nil
}

// DeleteSession implements store.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, userID, sessionID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete(sessionKey(userID, sessionID))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions implements store.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return deleteUserSessions(tx.Bucket(bucketSessions), userID)
	})
	if err != nil {
		return fmt.Errorf("bolt: delete sessions: %w", err)
	}
	return nil
}

func deleteUserSessions(b *bbolt.Bucket, userID string) error {
	prefix := sessionKey(userID, "")
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	return deleteKeys(b, keys)
}

type lockoutRecord struct {
	Failures int   `json:"n"`
	Expires  int64 `json:"e"`
}

// LockedFor implements store.Lockouts.
func (s *Store) LockedFor(ctx context.Context, key string, p store.LockoutPolicy) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := time.Now().UnixMilli()
	var left time.Duration
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketLockouts).Get([]byte(key))
		if v == nil {
			return nil
		}
		var r lockoutRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode lockout: %w", err)
		}
		if r.Failures >= p.MaxFailures && r.Expires > now {
			left = time.Duration(r.Expires-now) * time.Millisecond
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: lockout: %w", err)
	}
	return left, nil
}

// ReserveFailure implements store.Lockouts in one Update transaction;
// bbolt runs one writer at a time, so concurrent reservations are
// serialised.
func (s *Store) ReserveFailure(ctx context.Context, key string, p store.LockoutPolicy) (time.Duration, error) {
	// Under a guessing attack the key is locked: answer that from a read
	// transaction, without a commit and its fsync. The write transaction
	// below checks again, so the answer stays atomic.
	if left, err := s.LockedFor(ctx, key, p); err != nil || left > 0 {
		return left, err
	}
	var left time.Duration
	err := s.db.Update(func(tx *bbolt.Tx) error {
		// The clock is read inside the transaction: a reservation that
		// waited for the writer lock must not date its failure earlier
		// than the one it waited for.
		now := time.Now().UnixMilli()
		b := tx.Bucket(bucketLockouts)
		var r lockoutRecord
		if v := b.Get([]byte(key)); v != nil {
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode lockout: %w", err)
			}
		}
		if r.Expires <= now {
			r = lockoutRecord{Expires: now + p.Window.Milliseconds()}
		}
		if r.Failures >= p.MaxFailures {
			left = time.Duration(r.Expires-now) * time.Millisecond
			return nil
		}
		r.Failures++
		if r.Failures == p.MaxFailures {
			r.Expires = now + p.Window.Milliseconds()
		}
		v, err := json.Marshal(&r)
		if err != nil {
			return fmt.Errorf("encode lockout: %w", err)
		}
		return b.Put([]byte(key), v)
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: reserve failure: %w", err)
	}
	return left, nil
}

// ResetFailures implements store.Lockouts.
func (s *Store) ResetFailures(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Most logins have nothing to reset: look first, so they cost no
	// write transaction (and no fsync).
	var found bool
	_ = s.db.View(func(tx *bbolt.Tx) error {
		found = tx.Bucket(bucketLockouts).Get([]byte(key)) != nil
		return nil
	})
	if !found {
		return nil
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketLockouts).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("bolt: reset failures: %w", err)
	}
	return nil
}
