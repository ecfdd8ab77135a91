package redis

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/redis/rueidis"
)

// Keys of the auth store; the layout is documented on store.AuthStore.
const (
	authUserPrefix     = "gatewayd:auth:user:{"
	authUIDPrefix      = "gatewayd:auth:uid:{"
	authSessionsPrefix = "gatewayd:auth:sessions:{"
	authLockoutPrefix  = "gatewayd:auth:lockout:{"
)

var (
	//go:embed auth_create_user.lua
	authCreateUserSrc string
	//go:embed auth_set_hash.lua
	authSetHashSrc string
	//go:embed auth_session_create.lua
	authSessionCreateSrc string
	//go:embed auth_session_rotate.lua
	authSessionRotateSrc string
	//go:embed auth_lockout_reserve.lua
	authLockoutReserveSrc string
	//go:embed auth_lockout_check.lua
	authLockoutCheckSrc string
)

var (
	authCreateUser     = rueidis.NewLuaScript(authCreateUserSrc)
	authSetHash        = rueidis.NewLuaScript(authSetHashSrc)
	authSessionCreate  = rueidis.NewLuaScript(authSessionCreateSrc)
	authSessionRotate  = rueidis.NewLuaScript(authSessionRotateSrc)
	authLockoutReserve = rueidis.NewLuaScript(authLockoutReserveSrc)
	authLockoutCheck   = rueidis.NewLuaScript(authLockoutCheckSrc)
)

// Auth is the Redis implementation of store.AuthStore. It shares the
// connection of a Store and owns nothing: closing the Store closes it.
// Every call goes to Redis (no client-side cache): these records change
// under concurrent requests.
type Auth struct {
	c rueidis.Client
}

var _ store.AuthStore = (*Auth)(nil)

// NewAuth returns the auth store on s's connection.
func NewAuth(s *Store) *Auth { return &Auth{c: s.client} }

var authB64 = base64.RawURLEncoding

func authKey(prefix, tag string) string { return prefix + tag + "}" }

func authFail(op string, err error) error {
	return fmt.Errorf("redis: %s: %w", op, errors.Join(store.ErrUnavailable, err))
}

// CreateUser implements store.UserStore. The id key is claimed first, so a
// user record never exists without its id index.
func (a *Auth) CreateUser(ctx context.Context, u *store.User) error {
	uidKey := authKey(authUIDPrefix, u.ID)
	err := a.c.Do(ctx, a.c.B().Set().Key(uidKey).Value(u.Email).Nx().Build()).Error()
	if rueidis.IsRedisNil(err) {
		return store.ErrExists
	}
	if err != nil {
		return authFail("create user", err)
	}
	created, err := authCreateUser.Exec(ctx, a.c, []string{authKey(authUserPrefix, u.Email)}, []string{
		u.ID, u.Email, u.Role, string(u.PasswordHash), strconv.FormatInt(u.CreatedAt.UnixMilli(), 10),
	}).AsInt64()
	if err == nil && created == 1 {
		return nil
	}
	// Release the id; the email is taken (or the script failed).
	if derr := a.c.Do(ctx, a.c.B().Del().Key(uidKey).Build()).Error(); derr != nil && err == nil {
		err = derr
	}
	if err != nil {
		return authFail("create user", err)
	}
	return store.ErrExists
}

// UserByEmail implements store.UserStore.
func (a *Auth) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	m, err := a.c.Do(ctx, a.c.B().Hgetall().Key(authKey(authUserPrefix, email)).Build()).AsStrMap()
	if err != nil {
		return nil, authFail("get user", err)
	}
	if len(m) == 0 || m["id"] == "" {
		return nil, store.ErrNotFound
	}
	ms, _ := strconv.ParseInt(m["created"], 10, 64)
	return &store.User{
		ID: m["id"], Email: m["email"], Role: m["role"], PasswordHash: []byte(m["hash"]),
		CreatedAt: time.UnixMilli(ms),
	}, nil
}

func (a *Auth) emailOf(ctx context.Context, id string) (string, error) {
	email, err := a.c.Do(ctx, a.c.B().Get().Key(authKey(authUIDPrefix, id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", store.ErrNotFound
	}
	if err != nil {
		return "", authFail("get user", err)
	}
	return email, nil
}

// UserByID implements store.UserStore.
func (a *Auth) UserByID(ctx context.Context, id string) (*store.User, error) {
	email, err := a.emailOf(ctx, id)
	if err != nil {
		return nil, err
	}
	u, err := a.UserByEmail(ctx, email)
	if err != nil {
		return nil, err
	}
	if u.ID != id {
		return nil, store.ErrNotFound
	}
	return u, nil
}

// SetPasswordHash implements store.UserStore.
func (a *Auth) SetPasswordHash(ctx context.Context, id string, hash []byte) error {
	email, err := a.emailOf(ctx, id)
	if err != nil {
		return err
	}
	n, err := authSetHash.Exec(ctx, a.c, []string{authKey(authUserPrefix, email)}, []string{id, string(hash)}).AsInt64()
	if err != nil {
		return authFail("set password hash", err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func authMs(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// CreateSession implements store.SessionStore.
func (a *Auth) CreateSession(ctx context.Context, s *store.Session) error {
	err := authSessionCreate.Exec(ctx, a.c, []string{authKey(authSessionsPrefix, s.UserID)}, []string{
		s.ID, authB64.EncodeToString(s.TokenHash), authMs(s.ExpiresAt), authMs(time.Now()),
	}).Error()
	if err != nil {
		return authFail("create session", err)
	}
	return nil
}

// RotateSession implements store.SessionStore with one Lua script on the
// user's session hash, so concurrent rotations are serialised by Redis.
func (a *Auth) RotateSession(ctx context.Context, r *store.Rotation) (store.RotateResult, error) {
	vals, err := authSessionRotate.Exec(ctx, a.c, []string{authKey(authSessionsPrefix, r.UserID)}, []string{
		r.SessionID,
		authB64.EncodeToString(r.OldHash),
		authB64.EncodeToString(r.NewHash),
		authMs(r.Now),
		strconv.FormatInt(r.Grace.Milliseconds(), 10),
		authB64.EncodeToString(r.Successor),
		authMs(r.ExpiresAt),
	}).ToArray()
	if err != nil {
		return store.RotateResult{}, authFail("rotate session", err)
	}
	if len(vals) == 0 {
		return store.RotateResult{}, authFail("rotate session", errors.New("empty script reply"))
	}
	code, err := vals[0].AsInt64()
	if err != nil {
		return store.RotateResult{}, authFail("rotate session", err)
	}
	switch code {
	case 0:
		return store.RotateResult{Outcome: store.RotateNotFound}, nil
	case 1:
		return store.RotateResult{Outcome: store.Rotated}, nil
	case 2:
		if len(vals) < 2 {
			return store.RotateResult{}, authFail("rotate session", errors.New("retry without successor"))
		}
		enc, err := vals[1].ToString()
		if err != nil {
			return store.RotateResult{}, authFail("rotate session", err)
		}
		blob, err := authB64.DecodeString(enc)
		if err != nil {
			return store.RotateResult{}, fmt.Errorf("redis: rotate session: decode successor: %w", err)
		}
		return store.RotateResult{Outcome: store.RotateRetried, Successor: blob}, nil
	case 3:
		return store.RotateResult{Outcome: store.RotateReused}, nil
	}
	return store.RotateResult{}, fmt.Errorf("redis: rotate session: unexpected reply %d", code)
}

// DeleteSession implements store.SessionStore.
func (a *Auth) DeleteSession(ctx context.Context, userID, sessionID string) error {
	err := a.c.Do(ctx, a.c.B().Hdel().Key(authKey(authSessionsPrefix, userID)).Field(sessionID).Build()).Error()
	if err != nil {
		return authFail("delete session", err)
	}
	return nil
}

// DeleteUserSessions implements store.SessionStore.
func (a *Auth) DeleteUserSessions(ctx context.Context, userID string) error {
	err := a.c.Do(ctx, a.c.B().Del().Key(authKey(authSessionsPrefix, userID)).Build()).Error()
	if err != nil {
		return authFail("delete sessions", err)
	}
	return nil
}

// LockedFor implements store.Lockouts. Lock times come from the Redis
// server's clock, so every instance agrees.
func (a *Auth) LockedFor(ctx context.Context, key string, p store.LockoutPolicy) (time.Duration, error) {
	ms, err := authLockoutCheck.Exec(ctx, a.c, []string{authKey(authLockoutPrefix, key)}, []string{
		strconv.Itoa(p.MaxFailures),
	}).AsInt64()
	if err != nil {
		return 0, authFail("lockout", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ReserveFailure implements store.Lockouts with one Lua script on the
// key, so concurrent reservations are serialised by Redis.
func (a *Auth) ReserveFailure(ctx context.Context, key string, p store.LockoutPolicy) (time.Duration, error) {
	ms, err := authLockoutReserve.Exec(ctx, a.c, []string{authKey(authLockoutPrefix, key)}, []string{
		strconv.Itoa(p.MaxFailures), strconv.FormatInt(p.Window.Milliseconds(), 10),
	}).AsInt64()
	if err != nil {
		return 0, authFail("reserve failure", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ResetFailures implements store.Lockouts.
func (a *Auth) ResetFailures(ctx context.Context, key string) error {
	err := a.c.Do(ctx, a.c.B().Del().Key(authKey(authLockoutPrefix, key)).Build()).Error()
	if err != nil {
		return authFail("reset failures", err)
	}
	return nil
}
