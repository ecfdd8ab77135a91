package authserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// Client-facing messages. Fixed texts: never a Go error string.
const (
	msgBadJSON         = "the request body must be a JSON object"
	msgCredentials     = "invalid email or password"
	msgPasswordMissing = "password is required"
	msgEmailTaken      = "an account with this email already exists"
	msgLocked          = "too many failed logins: the account is locked, try again later"
	msgNoRefresh       = "a refresh token is required, in the body as refresh_token or in the refresh_token cookie"
	msgBadRefresh      = "invalid refresh token"
	msgExpiredRefresh  = "refresh token expired"
	msgReuse           = "refresh token reuse detected: every session of this account has been signed out"
	msgNoBearer        = "an access token is required as Authorization: Bearer <token>"
	msgBadAccess       = "invalid access token"
	msgExpiredAccess   = "access token expired"
	msgRevoked         = "token revoked"
	msgForeignRefresh  = "the refresh token belongs to another account"
	msgNoJWKS          = "no JWKS: tokens are signed with a shared secret (HS256)"
)

var (
	contentTypeJSON  = []byte("application/json")
	bearerPrefix     = []byte("bearer ")
	challengeBearer  = []byte(`Bearer`)
	challengeInvalid = []byte(`Bearer error="invalid_token"`)
	cacheJWKS        = []byte("public, max-age=300")
)

// writeJSON answers status with v as JSON.
func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		s.internal(ctx, "encode response", err)
		return
	}
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(b)
}

// decode reads the JSON object body into dst, answering 400 on failure.
func decode(ctx *fasthttp.RequestCtx, dst any) bool {
	body := bytes.TrimSpace(ctx.Request.Body())
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, dst) != nil {
		apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, msgBadJSON)
		return false
	}
	return true
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type userResponse struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

type meResponse struct {
	Sub   string `json:"sub"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

func badRequest(ctx *fasthttp.RequestCtx, msg string) {
	apierror.Write(ctx, fasthttp.StatusBadRequest, apierror.CodeBadRequest, msg)
}

func (s *Server) signup(ctx *fasthttp.RequestCtx) {
	var req credentials
	if !decode(ctx, &req) {
		return
	}
	email, err := auth.NormalizeEmail(req.Email)
	if err != nil {
		badRequest(ctx, auth.ErrInvalidEmail.Error())
		return
	}
	if err := auth.CheckPassword(req.Password, email); err != nil {
		badRequest(ctx, policyMessage(err))
		return
	}
	sc, cancel := s.storeCtx()
	defer cancel()
	// Look first so a taken email costs no bcrypt work; CreateUser still
	// decides races.
	switch _, err := s.users.UserByEmail(sc, email); {
	case err == nil:
		apierror.Write(ctx, fasthttp.StatusConflict, apierror.CodeConflict, msgEmailTaken)
		return
	case !errors.Is(err, store.ErrNotFound):
		s.fail(ctx, "signup", err)
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(req.Password), s.cost)
	if err != nil {
		s.internal(ctx, "hash password", err)
		return
	}
	u := &store.User{ID: uuid.NewString(), Email: email, Role: RoleUser, PasswordHash: hash, CreatedAt: time.Now()}
	sc2, cancel2 := s.storeCtx()
	defer cancel2()
	if err := s.users.CreateUser(sc2, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			apierror.Write(ctx, fasthttp.StatusConflict, apierror.CodeConflict, msgEmailTaken)
			return
		}
		s.fail(ctx, "create user", err)
		return
	}
	s.writeJSON(ctx, fasthttp.StatusCreated, &userResponse{ID: u.ID, Email: u.Email, Role: u.Role})
}

// policyMessage maps a CheckPassword error to its client text.
func policyMessage(err error) string {
	for _, e := range []error{
		auth.ErrPasswordTooShort, auth.ErrPasswordTooLong, auth.ErrPasswordNotUTF8,
		auth.ErrPasswordOneClass, auth.ErrPasswordHasLocalPart,
	} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "the password does not meet the password policy"
}

func (s *Server) login(ctx *fasthttp.RequestCtx) {
	var req credentials
	if !decode(ctx, &req) {
		return
	}
	email, err := auth.NormalizeEmail(req.Email)
	if err != nil {
		badRequest(ctx, auth.ErrInvalidEmail.Error())
		return
	}
	switch {
	case req.Password == "":
		badRequest(ctx, msgPasswordMissing)
		return
	case len(req.Password) > auth.MaxPasswordBytes:
		badRequest(ctx, auth.ErrPasswordTooLong.Error())
		return
	}
	// The failure is reserved before the comparison, in one atomic store
	// step: a count read before bcrypt would let every concurrent guess
	// through. A right password releases it below.
	sc, cancel := s.storeCtx()
	defer cancel()
	locked, err := s.users.ReserveFailure(sc, email, s.lockout)
	if err != nil {
		s.fail(ctx, "lockout", err)
		return
	}
	if locked > 0 {
		s.writeLocked(ctx, locked)
		return
	}
	u, err := s.users.UserByEmail(sc, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(ctx, "login", err)
		return
	}
	hash := s.dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	if s.compare(hash, []byte(req.Password)) != nil || u == nil {
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgCredentials)
		return
	}
	// Under load the comparison can wait for a CPU longer than a store
	// deadline: the calls after it get a deadline of their own.
	sc2, cancel2 := s.storeCtx()
	defer cancel2()
	if err := s.users.ResetFailures(sc2, email); err != nil {
		s.fail(ctx, "reset failures", err)
		return
	}
	s.rehash(u, req.Password)

	now := time.Now()
	sid := uuid.NewString()
	p, err := s.issue(u, sid, now)
	if err != nil {
		s.internal(ctx, "issue tokens", err)
		return
	}
	sc3, cancel3 := s.storeCtx()
	defer cancel3()
	err = s.users.CreateSession(sc3, &store.Session{
		ID: sid, UserID: u.ID, TokenHash: tokenHash(p.Refresh), ExpiresAt: time.Unix(p.RefreshExp, 0),
	})
	if err != nil {
		s.fail(ctx, "create session", err)
		return
	}
	s.writePair(ctx, p, now)
}

// rehash upgrades a hash made with a lower cost than configured. A failure
// only delays the upgrade to the next login.
func (s *Server) rehash(u *store.User, password string) {
	cost, err := bcrypt.Cost(u.PasswordHash)
	if err != nil || cost >= s.cost {
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err == nil {
		sc, cancel := s.storeCtx()
		err = s.users.SetPasswordHash(sc, u.ID, hash)
		cancel()
	}
	if err != nil {
		s.log.Warn("password rehash failed", zap.String("user_id", u.ID), zap.Error(err))
	}
}

func (s *Server) writeLocked(ctx *fasthttp.RequestCtx, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	var buf [20]byte
	ctx.Response.Header.SetBytesKV(headerRetryAfter, strconv.AppendInt(buf[:0], secs, 10))
	apierror.WriteInt(ctx, fasthttp.StatusTooManyRequests, apierror.CodeAccountLocked, msgLocked, "retry_after", secs)
}

// writePair answers 200 with the pair and sets the refresh cookie.
func (s *Server) writePair(ctx *fasthttp.RequestCtx, p *pair, now time.Time) {
	s.setRefreshCookie(ctx, p.Refresh, p.RefreshExp-now.Unix())
	s.writeJSON(ctx, fasthttp.StatusOK, &tokenResponse{
		AccessToken: p.Access, RefreshToken: p.Refresh, TokenType: "Bearer",
		ExpiresIn: max(0, p.AccessExp-now.Unix()),
	})
}

// setRefreshCookie sets the refresh cookie to live maxAge seconds, as long
// as the token.
func (s *Server) setRefreshCookie(ctx *fasthttp.RequestCtx, token string, maxAge int64) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(CookieName)
	c.SetValue(token)
	c.SetPath(PathPrefix)
	c.SetHTTPOnly(true)
	c.SetSecure(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetMaxAge(int(max(1, maxAge)))
	ctx.Response.Header.SetCookie(c)
}

func clearRefreshCookie(ctx *fasthttp.RequestCtx) {
	c := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(c)
	c.SetKey(CookieName)
	c.SetPath(PathPrefix)
	c.SetHTTPOnly(true)
	c.SetSecure(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	c.SetExpire(fasthttp.CookieExpireDelete)
	ctx.Response.Header.SetCookie(c)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refreshToken returns the refresh token from the JSON body or the cookie.
// ok is false when a 400 was written.
func refreshToken(ctx *fasthttp.RequestCtx) (token string, ok bool) {
	if len(bytes.TrimSpace(ctx.Request.Body())) > 0 {
		var req refreshRequest
		if !decode(ctx, &req) {
			return "", false
		}
		if req.RefreshToken != "" {
			return req.RefreshToken, true
		}
	}
	return string(ctx.Request.Header.Cookie(CookieName)), true
}

func (s *Server) refresh(ctx *fasthttp.RequestCtx) {
	token, ok := refreshToken(ctx)
	if !ok {
		return
	}
	if token == "" {
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgNoRefresh)
		return
	}
	claims, err := s.verifier.Verify(token, auth.TypeRefresh)
	if err != nil || claims.Session == "" {
		msg := msgBadRefresh
		if errors.Is(err, auth.ErrTokenExpired) {
			msg = msgExpiredRefresh
		}
		clearRefreshCookie(ctx)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msg)
		return
	}
	sc, cancel := s.storeCtx()
	defer cancel()
	u, err := s.users.UserByID(sc, claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		clearRefreshCookie(ctx)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgBadRefresh)
		return
	}
	if err != nil {
		s.fail(ctx, "refresh", err)
		return
	}
	now := time.Now()
	next, err := s.issue(u, claims.Session, now)
	if err != nil {
		s.internal(ctx, "issue tokens", err)
		return
	}
	blob, err := sealSuccessor(token, u.ID, claims.Session, next)
	if err != nil {
		s.internal(ctx, "seal successor", err)
		return
	}
	res, err := s.users.RotateSession(sc, &store.Rotation{
		UserID: u.ID, SessionID: claims.Session,
		OldHash: tokenHash(token), NewHash: tokenHash(next.Refresh), Successor: blob,
		Now: now, Grace: s.grace, ExpiresAt: time.Unix(next.RefreshExp, 0),
	})
	if err != nil {
		s.fail(ctx, "rotate session", err)
		return
	}
	switch res.Outcome {
	case store.Rotated:
		s.writePair(ctx, next, now)
	case store.RotateRetried:
		prev, err := openSuccessor(token, u.ID, claims.Session, res.Successor)
		if err != nil {
			s.internal(ctx, "open successor", err)
			return
		}
		s.writePair(ctx, prev, now)
	case store.RotateReused:
		s.log.Warn("refresh token reuse: every session of the user revoked",
			zap.String("user_id", u.ID), zap.String("session_id", claims.Session))
		// The mark is taken after the store deleted the sessions: every
		// token minted by a rotation that won before then has an earlier iat.
		mark := revokeAllMark(time.Now())
		if err := s.rev.RevokeAll(sc, u.ID, mark, s.refreshTTL); err != nil {
			s.fail(ctx, "revoke all", err)
			return
		}
		waitPastMark(mark)
		clearRefreshCookie(ctx)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgReuse)
	default:
		clearRefreshCookie(ctx)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgBadRefresh)
	}
}

// bearer verifies the request's access token and checks it is not revoked.
// It writes the 401 or 503 and returns nil when the request must stop.
func (s *Server) bearer(ctx *fasthttp.RequestCtx) *auth.Claims {
	h := ctx.Request.Header.PeekBytes(headerAuthorization)
	if len(h) <= len(bearerPrefix) || !bytes.EqualFold(h[:len(bearerPrefix)], bearerPrefix) {
		ctx.Response.Header.SetBytesKV(headerWWWAuthenticate, challengeBearer)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgNoBearer)
		return nil
	}
	claims, err := s.verifier.Verify(string(bytes.TrimSpace(h[len(bearerPrefix):])), auth.TypeAccess)
	if err != nil {
		msg := msgBadAccess
		if errors.Is(err, auth.ErrTokenExpired) {
			msg = msgExpiredAccess
		}
		ctx.Response.Header.SetBytesKV(headerWWWAuthenticate, challengeInvalid)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msg)
		return nil
	}
	sc, cancel := s.storeCtx()
	defer cancel()
	revoked, err := s.rev.IsRevoked(sc, []byte(claims.ID), []byte(claims.Subject), int64(claims.IssuedAt), 0)
	if err != nil {
		s.fail(ctx, "is revoked", err)
		return nil
	}
	if revoked {
		ctx.Response.Header.SetBytesKV(headerWWWAuthenticate, challengeInvalid)
		apierror.Write(ctx, fasthttp.StatusUnauthorized, apierror.CodeUnauthorized, msgRevoked)
		return nil
	}
	return claims
}

func (s *Server) logout(ctx *fasthttp.RequestCtx) {
	claims := s.bearer(ctx)
	if claims == nil {
		return
	}
	token, ok := refreshToken(ctx)
	if !ok {
		return
	}
	// The access token names its session: logout ends it whether or not
	// the refresh token is sent. A refresh token of the same account sent
	// along ends its own session too, should it be another one.
	sids := []string{claims.Session}
	if token != "" {
		rc, err := s.verifier.Verify(token, auth.TypeRefresh)
		switch {
		case errors.Is(err, auth.ErrTokenExpired):
			// Its session has expired with it: nothing to delete.
		case err != nil || rc.Session == "":
			badRequest(ctx, msgBadRefresh)
			return
		case rc.Subject != claims.Subject:
			badRequest(ctx, msgForeignRefresh)
			return
		case rc.Session != claims.Session:
			sids = append(sids, rc.Session)
		}
	}
	sc, cancel := s.storeCtx()
	defer cancel()
	for _, sid := range sids {
		if sid == "" {
			// An access token issued before tokens carried sid.
			continue
		}
		if err := s.users.DeleteSession(sc, claims.Subject, sid); err != nil {
			s.fail(ctx, "delete session", err)
			return
		}
	}
	if err := s.rev.Revoke(sc, claims.ID, claims.ExpiresAt.Time()); err != nil {
		s.fail(ctx, "revoke", err)
		return
	}
	clearRefreshCookie(ctx)
	ctx.Response.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) logoutAll(ctx *fasthttp.RequestCtx) {
	claims := s.bearer(ctx)
	if claims == nil {
		return
	}
	sc, cancel := s.storeCtx()
	defer cancel()
	// Sessions first: a refresh racing this request then fails instead of
	// minting an access token after the mark.
	if err := s.users.DeleteUserSessions(sc, claims.Subject); err != nil {
		s.fail(ctx, "delete sessions", err)
		return
	}
	mark := revokeAllMark(time.Now())
	if err := s.rev.RevokeAll(sc, claims.Subject, mark, s.refreshTTL); err != nil {
		s.fail(ctx, "revoke all", err)
		return
	}
	waitPastMark(mark)
	clearRefreshCookie(ctx)
	ctx.Response.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) me(ctx *fasthttp.RequestCtx) {
	claims := s.bearer(ctx)
	if claims == nil {
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, &meResponse{Sub: claims.Subject, Email: claims.Email, Role: claims.Role})
}

func (s *Server) serveJWKS(ctx *fasthttp.RequestCtx) {
	if s.jwks == nil {
		apierror.Write(ctx, fasthttp.StatusNotFound, apierror.CodeNotFound, msgNoJWKS)
		return
	}
	ctx.Response.Header.DelBytes(headerPragma)
	ctx.Response.Header.SetBytesKV(headerCacheControl, cacheJWKS)
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBodyRaw(s.jwks)
}
