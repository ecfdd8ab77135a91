// Package authserver is the auth service of SPEC §6 on fasthttp: signup,
// login, refresh with rotation and reuse detection, logout, logout-all, me,
// and the JWKS document of a key pair. The gateway serves it in-process as
// the upstream builtin:auth; authd serves it standalone.
//
// State: accounts, refresh sessions and login lockouts live in a
// store.AuthStore (Redis or the embedded bbolt file); revocations go
// through store.Revocations, the same data the gateway's blacklist plugin
// reads, so a logout is enforced by the gateway.
//
// Refresh rotation. Every login starts a session (a refresh family) whose
// id is the "sid" claim of its refresh tokens and of its access tokens, so
// a logout with the access token alone ends the session too. The store keeps, per session, the
// SHA-256 of the current refresh token, the SHA-256 of the previous one,
// when it was rotated, and a successor blob. A refresh presents token T:
//
//   - T is current: the service has already signed the successor pair
//     (access A', refresh T'); the store swaps in SHA-256(T') and keeps the
//     blob, AES-256-GCM of (A', T') under a key derived from T itself
//     (SHA-256 of a fixed label and T). The store never sees T, so the
//     blob is only readable by whoever holds T: at rest the successor
//     refresh token is as protected as a hash.
//   - T is the previous token and was rotated at most refresh_reuse_grace
//     ago (a client retrying after a lost response, or two tabs racing):
//     the service decrypts the blob and answers the SAME pair again.
//   - anything else (T two or more generations old, or the previous token
//     after the grace): reuse. The store deletes every session of the user
//     in the same atomic step; the service then calls RevokeAll for the
//     user, so the family's live access tokens die at the gateway too, and
//     answers 401.
//
// The check-and-rotate is one Lua script on Redis and one Update
// transaction on bbolt, so two concurrent refreshes of one token yield
// exactly one successor.
//
// Tokens carry whole-second iat, nbf and exp (RFC 7519 NumericDate), so
// revoke-all cannot rely on fractions: a logout-all (or a detected reuse)
// at time t sets the mark to the last millisecond of t's second, which
// every token issued up to then — iat at most t's second — is at or
// before, and then waits until the clock has entered the next second
// before answering. A token issued after the logout-all returns therefore
// has an iat of a later second and is never revoked, and one issued before
// the call always is; tokens issued while the call runs, in its last
// second, are revoked with the rest. The wait is under a second, once per
// logout-all.
package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// Paths the service answers.
const (
	PathPrefix    = "/v1/auth/"
	PathSignup    = PathPrefix + "signup"
	PathLogin     = PathPrefix + "login"
	PathRefresh   = PathPrefix + "refresh"
	PathLogout    = PathPrefix + "logout"
	PathLogoutAll = PathPrefix + "logout-all"
	PathMe        = PathPrefix + "me"
	PathJWKS      = "/.well-known/jwks.json"
)

// CookieName is the refresh token cookie (httpOnly, Secure,
// SameSite=Strict, Path=/v1/auth/).
const CookieName = "refresh_token"

// MaxBodyBytes is the largest request body the service reads.
const MaxBodyBytes = 64 << 10

// StoreTimeout bounds each store call of a request.
const StoreTimeout = 3 * time.Second

// RoleUser is the role of accounts made by signup.
const RoleUser = "user"

// Server is the auth service. It is safe for concurrent use.
type Server struct {
	key      *auth.Key
	verifier *auth.Verifier
	users    store.AuthStore
	rev      store.Revocations
	log      *zap.Logger
	jwks     []byte // nil for HS256

	issuer     string
	audience   string
	accessTTL  time.Duration
	refreshTTL time.Duration
	grace      time.Duration
	cost       int
	lockout    store.LockoutPolicy
	// dummyHash is compared against when the email is unknown, so an
	// unknown account costs the same bcrypt work as a wrong password.
	dummyHash []byte
	// storeTimeout is StoreTimeout; compare is
	// bcrypt.CompareHashAndPassword. Tests slow the comparison down past
	// the deadline.
	storeTimeout time.Duration
	compare      func(hash, password []byte) error

	closed atomic.Bool
}

// New validates cfg (applying defaults) and returns the service. The stores
// stay owned by the caller: Close does not close them.
func New(cfg *config.Auth, users store.AuthStore, rev store.Revocations, logger *zap.Logger) (*Server, error) {
	if users == nil || rev == nil {
		return nil, errors.New("authserver: a user store and a revocation store are required")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	key, err := compile(cfg, cfg.Meta.File)
	if err != nil {
		return nil, err
	}
	s := &Server{
		key:        key,
		verifier:   auth.NewVerifier(key, cfg.Issuer, cfg.Audience, 0),
		users:      users,
		rev:        rev,
		log:        logger,
		issuer:     cfg.Issuer,
		audience:   cfg.Audience,
		accessTTL:  cfg.AccessTTL.D(),
		refreshTTL: cfg.RefreshTTL.D(),
		grace:      cfg.RefreshReuseGrace.D(),
		cost:       cfg.BcryptCost,
		lockout:    store.LockoutPolicy{MaxFailures: cfg.Lockout.MaxFailures, Window: cfg.Lockout.Window.D()},

		storeTimeout: StoreTimeout,
		compare:      bcrypt.CompareHashAndPassword,
	}
	if set, ok := key.JWKS(); ok {
		if s.jwks, err = marshalJSON(set); err != nil {
			return nil, fmt.Errorf("authserver: encode jwks: %w", err)
		}
	}
	var pw [32]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("authserver: random: %w", err)
	}
	s.dummyHash, err = bcrypt.GenerateFromPassword([]byte(base64.RawStdEncoding.EncodeToString(pw[:])), s.cost)
	if err != nil {
		return nil, fmt.Errorf("authserver: dummy hash: %w", err)
	}
	return s, nil
}

// Key returns the signing key (for a verifier in the same process).
func (s *Server) Key() *auth.Key { return s.key }

// Close stops the service: later requests get 503. The stores are the
// caller's to close.
func (s *Server) Close() error {
	s.closed.Store(true)
	return nil
}

var (
	headerRequestID       = []byte("X-Request-ID")
	headerCacheControl    = []byte("Cache-Control")
	headerPragma          = []byte("Pragma")
	headerAllow           = []byte("Allow")
	headerWWWAuthenticate = []byte("WWW-Authenticate")
	headerRetryAfter      = []byte("Retry-After")
	headerAuthorization   = []byte("Authorization")
	valueNoStore          = []byte("no-store")
	valueNoCache          = []byte("no-cache")
	valuePOST             = []byte("POST")
	valueGETHEAD          = []byte("GET, HEAD")
)

// Handle serves one request. It routes by path: /v1/auth/... and
// /.well-known/jwks.json; anything else is 404.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	st := reqctx.Get(ctx)
	if st == nil {
		st = reqctx.Acquire(ctx)
	}
	if len(st.RequestID) == 0 {
		if id := ctx.Request.Header.PeekBytes(headerRequestID); validRequestID(id) {
			st.RequestID = append(st.RequestID[:0], id...)
		} else {
			st.RequestID = append(st.RequestID[:0], uuid.NewString()...)
		}
	}
	ctx.Response.Header.SetBytesKV(headerRequestID, st.RequestID)
	ctx.Response.Header.SetBytesKV(headerCacheControl, valueNoStore)
	ctx.Response.Header.SetBytesKV(headerPragma, valueNoCache)
	if s.closed.Load() {
		apierror.Write(ctx, fasthttp.StatusServiceUnavailable, apierror.CodeUnavailable, "the auth service is shutting down")
		return
	}
	switch string(ctx.Path()) {
	case PathSignup:
		s.post(ctx, s.signup)
	case PathLogin:
		s.post(ctx, s.login)
	case PathRefresh:
		s.post(ctx, s.refresh)
	case PathLogout:
		s.post(ctx, s.logout)
	case PathLogoutAll:
		s.post(ctx, s.logoutAll)
	case PathMe:
		s.get(ctx, s.me)
	case PathJWKS:
		s.get(ctx, s.serveJWKS)
	default:
		apierror.Write(ctx, fasthttp.StatusNotFound, apierror.CodeNotFound, "no such auth endpoint")
	}
}

func (s *Server) post(ctx *fasthttp.RequestCtx, h func(*fasthttp.RequestCtx)) {
	if !ctx.IsPost() {
		ctx.Response.Header.SetBytesKV(headerAllow, valuePOST)
		apierror.Write(ctx, fasthttp.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed, "this endpoint only accepts POST")
		return
	}
	if len(ctx.Request.Body()) > MaxBodyBytes {
		apierror.Write(ctx, fasthttp.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge, "the request body must be at most 64 KiB")
		return
	}
	h(ctx)
}

func (s *Server) get(ctx *fasthttp.RequestCtx, h func(*fasthttp.RequestCtx)) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.SetBytesKV(headerAllow, valueGETHEAD)
		apierror.Write(ctx, fasthttp.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed, "this endpoint only accepts GET")
		return
	}
	h(ctx)
}

// validRequestID accepts 1-128 chars of [A-Za-z0-9._:-] (SPEC §4).
func validRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// storeCtx bounds one store call, or a few made back to back: never one
// made before a bcrypt operation and one after it, since the operation can
// wait for a CPU longer than the deadline.
func (s *Server) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.storeTimeout)
}

// fail answers 503 for a store error and logs it once.
func (s *Server) fail(ctx *fasthttp.RequestCtx, op string, err error) {
	var id []byte
	if st := reqctx.Get(ctx); st != nil {
		id = st.RequestID
	}
	s.log.Error("auth store error", zap.String("op", op), zap.ByteString("request_id", id), zap.Error(err))
	apierror.Write(ctx, fasthttp.StatusServiceUnavailable, apierror.CodeUnavailable, "the auth store is unavailable, try again later")
}

// internal answers 500 for an unexpected error and logs it once.
func (s *Server) internal(ctx *fasthttp.RequestCtx, op string, err error) {
	var id []byte
	if st := reqctx.Get(ctx); st != nil {
		id = st.RequestID
	}
	s.log.Error("auth service error", zap.String("op", op), zap.ByteString("request_id", id), zap.Error(err))
	apierror.Write(ctx, fasthttp.StatusInternalServerError, apierror.CodeInternal, "internal error")
}

// revokeAllMark returns the revoke-all mark for a logout-all at t: the
// last millisecond of t's second, so every token issued up to t (whole
// second iat) is at or before it.
func revokeAllMark(t time.Time) time.Time {
	return time.Unix(t.Unix(), int64(999*time.Millisecond))
}

// waitPastMark returns once the clock has passed mark, so a token issued
// afterwards has an iat in a later second and is not revoked by it.
func waitPastMark(mark time.Time) {
	if d := time.Until(mark.Add(time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}
