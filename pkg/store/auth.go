package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the auth stores.
var (
	// ErrNotFound is returned for a user that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned by CreateUser when the email is taken.
	ErrExists = errors.New("already exists")
)

// User is an account of the auth service.
type User struct {
	// ID is the token subject (a UUID).
	ID string
	// Email is the normalised (lowercase) address, unique.
	Email string
	Role  string
	// PasswordHash is the bcrypt hash.
	PasswordHash []byte
	CreatedAt    time.Time
}

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser stores u, or returns ErrExists when u.Email is taken.
	CreateUser(ctx context.Context, u *User) error
	// UserByEmail returns the user with the normalised email, or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserByID returns the user with id, or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// SetPasswordHash replaces a user's bcrypt hash, or returns ErrNotFound.
	SetPasswordHash(ctx context.Context, id string, hash []byte) error
}

// Session is a refresh family: the chain of refresh tokens that started at
// one login. Only the SHA-256 of its current token is stored.
type Session struct {
	ID        string
	UserID    string
	TokenHash []byte
	// ExpiresAt is when the current refresh token expires.
	ExpiresAt time.Time
}

// Rotation asks to replace the current refresh token of a session.
type Rotation struct {
	UserID    string
	SessionID string
	// OldHash is the SHA-256 of the presented refresh token.
	OldHash []byte
	// NewHash is the SHA-256 of its successor.
	NewHash []byte
	// Successor is an opaque blob stored with the rotation and handed back
	// to a retry of OldHash within Grace. The store never interprets it.
	Successor []byte
	Now       time.Time
	Grace     time.Duration
	// ExpiresAt is the successor's expiry; the session lives until then.
	ExpiresAt time.Time
}

// RotateOutcome is what RotateSession did.
type RotateOutcome int

// Rotation outcomes.
const (
	// RotateNotFound: no such session (logged out, revoked or expired).
	RotateNotFound RotateOutcome = iota
	// Rotated: OldHash was current; NewHash is now.
	Rotated
	// RotateRetried: OldHash is the immediately previous token, rotated at
	// most Grace ago; nothing changed and RotateResult.Successor is the
	// blob stored by that rotation.
	RotateRetried
	// RotateReused: OldHash is an older token of the session, or the previous
	// one after the grace. Every session of the user has been deleted.
	RotateReused
)

// String returns the outcome's name.
func (o RotateOutcome) String() string {
	switch o {
	case Rotated:
		return "rotated"
	case RotateRetried:
		return "retried"
	case RotateReused:
		return "reused"
	}
	return "not_found"
}

// RotateResult is the result of RotateSession.
type RotateResult struct {
	Outcome RotateOutcome
	// Successor is set for RotateRetried.
	Successor []byte
}

// SessionStore keeps refresh families. RotateSession is atomic: of two
// concurrent rotations of one token exactly one gets Rotated.
type SessionStore interface {
	// CreateSession stores a new session (a login).
	CreateSession(ctx context.Context, s *Session) error
	// RotateSession checks the presented token against the session and
	// rotates it, in one atomic step. A token that is neither the current
	// one nor a retry within the grace deletes every session of the user.
	RotateSession(ctx context.Context, r *Rotation) (RotateResult, error)
	// DeleteSession deletes one session; deleting a missing one is no error.
	DeleteSession(ctx context.Context, userID, sessionID string) error
	// DeleteUserSessions deletes every session of a user.
	DeleteUserSessions(ctx context.Context, userID string) error
}

// LockoutPolicy locks a key after MaxFailures failures within Window; the
// lock lasts Window from the failure that set it.
type LockoutPolicy struct {
	MaxFailures int
	Window      time.Duration
}

// Lockouts counts failed logins per account (keyed by normalised email,
// whether or not the account exists).
//
// A login reserves its failure before it compares the password: the
// comparison (bcrypt) takes long enough that concurrent guesses checked
// against a count read beforehand would all see the account unlocked. A
// reservation is one atomic step, so of any number of concurrent attempts
// at most MaxFailures are let through before the lock; a login that turns
// out right calls ResetFailures, one that turns out wrong keeps the failure
// it already counted.
type Lockouts interface {
	// LockedFor returns how long key stays locked, or 0.
	LockedFor(ctx context.Context, key string, p LockoutPolicy) (time.Duration, error)
	// ReserveFailure atomically counts one failure of key unless key is
	// locked. It returns 0 when the attempt may go on (the failure is
	// counted, and the one that reaches MaxFailures locks key for Window),
	// or how long key stays locked, counting nothing.
	ReserveFailure(ctx context.Context, key string, p LockoutPolicy) (time.Duration, error)
	// ResetFailures forgets the failures of key (after a successful login).
	ResetFailures(ctx context.Context, key string) error
}

// AuthStore is all the state of the auth service except revocations, which
// go through Revocations so the gateway's blacklist sees them.
//
// Redis key layout (store/redis). Every key holds one hash tag, and every
// script touches a single key, so the layout works on Redis Cluster:
//
//   - "gatewayd:auth:user:{<email>}": hash with fields id, email, role, hash
//     (bcrypt), created (unix ms);
//   - "gatewayd:auth:uid:{<id>}": string, the user's email;
//   - "gatewayd:auth:sessions:{<user id>}": hash, one field per session id,
//     each a JSON record {c: current token hash, p: previous token hash,
//     r: rotation time (ms), s: successor blob, e: expiry (ms)}, hashes in
//     base64url; the key expires with the user's last session;
//   - "gatewayd:auth:lockout:{<email>}": string, the failure count, expiring
//     after the window (and Window after the failure that locked it).
//
// The embedded store (store/bolt) keeps the same records in bbolt buckets.
type AuthStore interface {
	UserStore
	SessionStore
	Lockouts
}
