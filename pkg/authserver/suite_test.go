package authserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/apierror"
	"github.com/gatewayd/gatewayd/pkg/auth"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"golang.org/x/crypto/bcrypt"
)

func TestSignup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())

		r := h.do("POST", PathSignup, creds{"Alice@Example.com", goodPassword})
		wantStatus(t, r, http.StatusCreated)
		var u userResponse
		if err := json.Unmarshal(r.body, &u); err != nil {
			t.Fatal(err)
		}
		if u.ID == "" || u.Email != "alice@example.com" || u.Role != "user" {
			t.Fatalf("signup body = %+v, want id, lowercased email, role user", u)
		}
		stored, err := h.users.UserByEmail(context.Background(), "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if stored.ID != u.ID || bcrypt.CompareHashAndPassword(stored.PasswordHash, []byte(goodPassword)) != nil {
			t.Fatalf("stored user %+v does not match the signup", stored)
		}

		t.Run("email taken", func(t *testing.T) {
			r := h.do("POST", PathSignup, creds{"ALICE@example.com", "Another-pass-1"})
			wantError(t, r, http.StatusConflict, apierror.CodeConflict)
		})
		t.Run("invalid email", func(t *testing.T) {
			e := wantError(t, h.do("POST", PathSignup, creds{"not-an-email", goodPassword}), http.StatusBadRequest, apierror.CodeBadRequest)
			if e.Message != auth.ErrInvalidEmail.Error() {
				t.Fatalf("message = %q", e.Message)
			}
		})
		t.Run("weak password", func(t *testing.T) {
			e := wantError(t, h.do("POST", PathSignup, creds{"bob@example.com", "short"}), http.StatusBadRequest, apierror.CodeBadRequest)
			if e.Message != auth.ErrPasswordTooShort.Error() {
				t.Fatalf("message = %q", e.Message)
			}
		})
		t.Run("password over 72 bytes", func(t *testing.T) {
			pw := strings.Repeat("Ab1", 25)
			e := wantError(t, h.do("POST", PathSignup, creds{"bob@example.com", pw}), http.StatusBadRequest, apierror.CodeBadRequest)
			if e.Message != auth.ErrPasswordTooLong.Error() {
				t.Fatalf("message = %q", e.Message)
			}
		})
		t.Run("malformed body", func(t *testing.T) {
			for _, body := range []string{"", "not json", `["a"]`, `{"email": 3}`} {
				wantError(t, h.do("POST", PathSignup, body), http.StatusBadRequest, apierror.CodeBadRequest)
			}
		})
		t.Run("body too large", func(t *testing.T) {
			r := h.do("POST", PathSignup, `{"email":"`+strings.Repeat("a", MaxBodyBytes)+`"}`)
			wantError(t, r, http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge)
		})
		t.Run("wrong method", func(t *testing.T) {
			r := h.do("GET", PathSignup, nil)
			wantError(t, r, http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
			if r.header.Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", r.header.Get("Allow"))
			}
		})
	})
}

func TestLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		id := h.signup("carol@example.com", goodPassword)

		before := time.Now()
		r := h.do("POST", PathLogin, creds{"Carol@Example.com", goodPassword})
		wantStatus(t, r, http.StatusOK)
		tk := decodeTokens(t, r)
		if tk.TokenType != "Bearer" || tk.ExpiresIn != 900 {
			t.Fatalf("token_type %q expires_in %d, want Bearer 900", tk.TokenType, tk.ExpiresIn)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
		}
		c := r.cookie
		if c == nil || c.Value != tk.RefreshToken || !c.HttpOnly || !c.Secure ||
			c.SameSite != http.SameSiteStrictMode || c.Path != "/v1/auth/" || c.MaxAge != int((168*time.Hour).Seconds()) {
			t.Fatalf("refresh cookie = %+v", c)
		}
		claims, err := h.srv.verifier.Verify(tk.AccessToken, auth.TypeAccess)
		if err != nil {
			t.Fatal(err)
		}
		if claims.Subject != id || claims.Email != "carol@example.com" || claims.Role != "user" ||
			claims.Issuer != "gatewayd-auth" || len(claims.Audience) != 1 || claims.Audience[0] != "api" || claims.ID == "" {
			t.Fatalf("access claims = %+v", claims)
		}
		if iat := claims.IssuedAt.Time(); iat.Before(before.Truncate(time.Second)) || iat.After(time.Now()) {
			t.Fatalf("iat %v outside the request", iat)
		}
		// RFC 7519 NumericDate as consumers expect it: whole seconds.
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tk.AccessToken, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(payload, &raw); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"iat", "nbf", "exp"} {
			if v := string(raw[c]); v == "" || strings.ContainsAny(v, ".eE") {
				t.Errorf("%s = %q, want an integer", c, v)
			}
		}
		rc, err := h.srv.verifier.Verify(tk.RefreshToken, auth.TypeRefresh)
		if err != nil || rc.Session == "" || rc.Subject != id {
			t.Fatalf("refresh claims = %+v, %v", rc, err)
		}

		t.Run("wrong password and unknown email look the same", func(t *testing.T) {
			wrong := wantError(t, h.do("POST", PathLogin, creds{"carol@example.com", "Wrong-password-1"}), http.StatusUnauthorized, apierror.CodeUnauthorized)
			unknown := wantError(t, h.do("POST", PathLogin, creds{"nobody@example.com", "Wrong-password-1"}), http.StatusUnauthorized, apierror.CodeUnauthorized)
			if wrong.Message != unknown.Message || wrong.Message != msgCredentials {
				t.Fatalf("messages differ: %q vs %q", wrong.Message, unknown.Message)
			}
		})
		t.Run("password over 72 bytes", func(t *testing.T) {
			pw := goodPassword + strings.Repeat("x", 72)
			wantError(t, h.do("POST", PathLogin, creds{"carol@example.com", pw}), http.StatusBadRequest, apierror.CodeBadRequest)
		})
		t.Run("missing password", func(t *testing.T) {
			wantError(t, h.do("POST", PathLogin, `{"email":"carol@example.com"}`), http.StatusBadRequest, apierror.CodeBadRequest)
		})
	})
}

func TestRehashOnLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		users, rev := b.open(t)
		hash, err := bcrypt.GenerateFromPassword([]byte(goodPassword), 4)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := users.CreateUser(ctx, &store.User{ID: "u-rehash", Email: "old@example.com", Role: "user", PasswordHash: hash, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.BcryptCost = 5
		h := serve(t, cfg, users, rev)
		h.login("old@example.com", goodPassword)
		u, err := users.UserByEmail(ctx, "old@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if cost, _ := bcrypt.Cost(u.PasswordHash); cost != 5 {
			t.Fatalf("stored cost = %d, want 5", cost)
		}
		if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(goodPassword)) != nil {
			t.Fatal("rehashed password does not match")
		}
		h.login("old@example.com", goodPassword)
	})
}

func TestMe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		id, tk := h.account("dave@example.com")

		r := h.do("GET", PathMe, nil, bearer(tk.AccessToken))
		wantStatus(t, r, http.StatusOK)
		var me meResponse
		if err := json.Unmarshal(r.body, &me); err != nil {
			t.Fatal(err)
		}
		if me != (meResponse{Sub: id, Email: "dave@example.com", Role: "user"}) {
			t.Fatalf("me = %+v", me)
		}

		expired := &auth.Claims{
			Issuer: "gatewayd-auth", Subject: id, Audience: []string{"api"}, ID: "jti-old",
			IssuedAt: auth.Milli(time.Now().Add(-time.Hour)), ExpiresAt: auth.Milli(time.Now().Add(-time.Minute)),
			Type: auth.TypeAccess,
		}
		expiredToken, err := h.srv.key.Sign(expired)
		if err != nil {
			t.Fatal(err)
		}
		foreignKey, err := auth.NewHMACKey([]byte(strings.Repeat("z", 32)), "")
		if err != nil {
			t.Fatal(err)
		}
		forged := *expired
		forged.ExpiresAt = auth.Milli(time.Now().Add(time.Hour))
		forgedToken, err := foreignKey.Sign(&forged)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name        string
			give        []opt
			wantMessage string
			wantHeader  string
		}{
			{"no token", nil, msgNoBearer, "Bearer"},
			{"not bearer", []opt{withHeader("Authorization", "Basic Zm9vOmJhcg==")}, msgNoBearer, "Bearer"},
			{"garbage", []opt{bearer("not.a.token")}, msgBadAccess, `Bearer error="invalid_token"`},
			{"refresh token", []opt{bearer(tk.RefreshToken)}, msgBadAccess, `Bearer error="invalid_token"`},
			{"expired", []opt{bearer(expiredToken)}, msgExpiredAccess, `Bearer error="invalid_token"`},
			{"other key", []opt{bearer(forgedToken)}, msgBadAccess, `Bearer error="invalid_token"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.do("GET", PathMe, nil, tt.give...)
				e := wantError(t, r, http.StatusUnauthorized, apierror.CodeUnauthorized)
				if e.Message != tt.wantMessage {
					t.Fatalf("message = %q, want %q", e.Message, tt.wantMessage)
				}
				if got := r.header.Get("WWW-Authenticate"); got != tt.wantHeader {
					t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.wantHeader)
				}
			})
		}
		t.Run("wrong method", func(t *testing.T) {
			r := h.do("POST", PathMe, nil, bearer(tk.AccessToken))
			wantError(t, r, http.StatusMethodNotAllowed, apierror.CodeMethodNotAllowed)
		})
	})
}

func TestRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		_, t1 := h.account("erin@example.com")

		r := h.refresh(t1.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t2 := decodeTokens(t, r)
		if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
			t.Fatal("refresh returned the old tokens")
		}
		if r.cookie == nil || r.cookie.Value != t2.RefreshToken {
			t.Fatalf("refresh cookie = %+v", r.cookie)
		}
		if r := h.do("GET", PathMe, nil, bearer(t2.AccessToken)); r.status != http.StatusOK {
			t.Fatalf("new access token: %d %s", r.status, r.body)
		}

		t.Run("cookie", func(t *testing.T) {
			r := h.do("POST", PathRefresh, nil, withCookie(t2.RefreshToken))
			wantStatus(t, r, http.StatusOK)
			t3 := decodeTokens(t, r)
			// The session continues from the cookie's successor.
			wantStatus(t, h.refresh(t3.RefreshToken), http.StatusOK)
		})
		t.Run("missing token", func(t *testing.T) {
			e := wantError(t, h.do("POST", PathRefresh, nil), http.StatusUnauthorized, apierror.CodeUnauthorized)
			if e.Message != msgNoRefresh {
				t.Fatalf("message = %q", e.Message)
			}
		})
		t.Run("invalid token", func(t *testing.T) {
			wantError(t, h.refresh("abc.def.ghi"), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
		t.Run("access token", func(t *testing.T) {
			wantError(t, h.refresh(t2.AccessToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
		t.Run("malformed body", func(t *testing.T) {
			wantError(t, h.do("POST", PathRefresh, "{"), http.StatusBadRequest, apierror.CodeBadRequest)
		})
	})
}

// TestRefreshReuse: R1 -> R2, then R1 again after the grace revokes the
// family: R1 and R2 are refused and the live access token is revoked.
func TestRefreshReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		cfg.RefreshReuseGrace = config.Duration(100 * time.Millisecond)
		h := newHarness(t, b, cfg)
		_, t1 := h.account("frank@example.com")
		// A second session of the same user dies too (SPEC §6).
		other := h.login("frank@example.com", goodPassword)

		r := h.refresh(t1.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t2 := decodeTokens(t, r)
		time.Sleep(150 * time.Millisecond)

		e := wantError(t, h.refresh(t1.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		if e.Message != msgReuse {
			t.Fatalf("message = %q, want %q", e.Message, msgReuse)
		}
		wantError(t, h.refresh(t2.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		wantError(t, h.refresh(other.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)

		for _, access := range []string{t2.AccessToken, other.AccessToken} {
			c, err := h.srv.verifier.Verify(access, auth.TypeAccess)
			if err != nil {
				t.Fatal(err)
			}
			revoked, err := h.rev.IsRevoked(context.Background(), []byte(c.ID), []byte(c.Subject), int64(c.IssuedAt), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !revoked {
				t.Fatal("access token of the revoked family is not revoked")
			}
			wantError(t, h.do("GET", PathMe, nil, bearer(access)), http.StatusUnauthorized, apierror.CodeUnauthorized)
		}
		// A new login after the reuse works at once.
		fresh := h.login("frank@example.com", goodPassword)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(fresh.AccessToken)), http.StatusOK)
	})
}

// TestRefreshOtherSpelling: another spelling of the current refresh token
// (spare bits of its last character set, or a line break the base64
// decoder would skip) is refused at the door as an invalid token. It never
// reaches reuse detection, so the family is not revoked.
func TestRefreshOtherSpelling(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		_, t1 := h.account("malleable@example.com")
		r := h.refresh(t1.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t2 := decodeTokens(t, r)

		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		tok := t2.RefreshToken
		last := strings.IndexByte(alphabet, tok[len(tok)-1])
		// An HS256 signature is 43 characters for 32 bytes: the last
		// character's two low bits are spare.
		variants := []string{tok + "\n", tok[:20] + "\r\n" + tok[20:]}
		for x := 1; x < 4; x++ {
			variants = append(variants, tok[:len(tok)-1]+string(alphabet[last^x]))
		}
		for _, v := range variants {
			e := wantError(t, h.refresh(v), http.StatusUnauthorized, apierror.CodeUnauthorized)
			if e.Message != msgBadRefresh {
				t.Fatalf("refresh with %q: message %q, want %q", v, e.Message, msgBadRefresh)
			}
			if !strings.ContainsAny(v, "\r\n") {
				wantError(t, h.do("POST", PathRefresh, nil, withCookie(v)), http.StatusUnauthorized, apierror.CodeUnauthorized)
			}
		}
		// The family is intact: its access token works and its refresh
		// token rotates.
		wantStatus(t, h.do("GET", PathMe, nil, bearer(t2.AccessToken)), http.StatusOK)
		wantStatus(t, h.refresh(t2.RefreshToken), http.StatusOK)
	})
}

func TestRefreshGraceRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		cfg.RefreshReuseGrace = config.Duration(30 * time.Second)
		h := newHarness(t, b, cfg)
		_, t1 := h.account("grace@example.com")

		first := h.refresh(t1.RefreshToken)
		wantStatus(t, first, http.StatusOK)
		t2 := decodeTokens(t, first)
		retry := h.refresh(t1.RefreshToken)
		wantStatus(t, retry, http.StatusOK)
		again := decodeTokens(t, retry)
		if again.AccessToken != t2.AccessToken || again.RefreshToken != t2.RefreshToken {
			t.Fatal("a retry within the grace did not return the same successor pair")
		}
		if again.RefreshToken == t1.RefreshToken {
			t.Fatal("a retry returned the old refresh token")
		}
		if retry.cookie == nil || retry.cookie.Value != t2.RefreshToken {
			t.Fatalf("retry cookie = %+v", retry.cookie)
		}
		// The family continues from the successor.
		r := h.refresh(t2.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t3 := decodeTokens(t, r)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(t3.AccessToken)), http.StatusOK)
	})
}

// TestRefreshTwoGenerationsOld: R1 -> R2 -> R3 within the grace, then R1 is
// reuse (only the immediately previous token may retry).
func TestRefreshTwoGenerationsOld(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		cfg.RefreshReuseGrace = config.Duration(30 * time.Second)
		h := newHarness(t, b, cfg)
		_, t1 := h.account("gen@example.com")
		r := h.refresh(t1.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t2 := decodeTokens(t, r)
		r = h.refresh(t2.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		t3 := decodeTokens(t, r)

		e := wantError(t, h.refresh(t1.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		if e.Message != msgReuse {
			t.Fatalf("message = %q, want %q", e.Message, msgReuse)
		}
		wantError(t, h.refresh(t3.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		wantError(t, h.do("GET", PathMe, nil, bearer(t3.AccessToken)), http.StatusUnauthorized, apierror.CodeUnauthorized)
	})
}

// TestRefreshConcurrent: concurrent refreshes of one token yield exactly
// one successor, which continues the family.
func TestRefreshConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		cfg.RefreshReuseGrace = config.Duration(30 * time.Second)
		h := newHarness(t, b, cfg)
		_, t1 := h.account("race@example.com")

		const n = 2
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]*response, n)
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = h.refresh(t1.RefreshToken)
			})
		}
		close(start)
		wg.Wait()
		var successor string
		for _, r := range results {
			wantStatus(t, r, http.StatusOK)
			tk := decodeTokens(t, r)
			if successor == "" {
				successor = tk.RefreshToken
			} else if tk.RefreshToken != successor {
				t.Fatal("concurrent refreshes produced two successors")
			}
		}
		wantStatus(t, h.refresh(successor), http.StatusOK)
	})
}

func TestLockout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		cfg.Lockout = config.Lockout{MaxFailures: 3, Window: config.Duration(time.Second)}
		h := newHarness(t, b, cfg)
		h.signup("lock@example.com", goodPassword)
		bad := creds{"lock@example.com", "Wrong-password-1"}

		t.Run("success resets the count", func(t *testing.T) {
			for range 2 {
				wantStatus(t, h.do("POST", PathLogin, bad), http.StatusUnauthorized)
			}
			h.login("lock@example.com", goodPassword)
			for range 2 {
				wantStatus(t, h.do("POST", PathLogin, bad), http.StatusUnauthorized)
			}
			h.login("lock@example.com", goodPassword)
		})
		t.Run("locks and expires", func(t *testing.T) {
			for range 3 {
				wantStatus(t, h.do("POST", PathLogin, bad), http.StatusUnauthorized)
			}
			r := h.do("POST", PathLogin, creds{"lock@example.com", goodPassword}, withHeader("X-Request-ID", "lock-1"))
			e := wantError(t, r, http.StatusTooManyRequests, apierror.CodeAccountLocked)
			if r.header.Get("Retry-After") != "1" || e.RetryAfter != 1 || e.RequestID != "lock-1" {
				t.Fatalf("Retry-After %q, body %s", r.header.Get("Retry-After"), r.body)
			}
			time.Sleep(1100 * time.Millisecond)
			h.login("lock@example.com", goodPassword)
		})
		t.Run("unknown email locks too", func(t *testing.T) {
			ghost := creds{"ghost@example.com", "Wrong-password-1"}
			for range 3 {
				wantStatus(t, h.do("POST", PathLogin, ghost), http.StatusUnauthorized)
			}
			wantError(t, h.do("POST", PathLogin, ghost), http.StatusTooManyRequests, apierror.CodeAccountLocked)
		})
	})
}

// TestLockoutConcurrent fires wrong passwords for one account all at once
// (as from many IPs): at most max_failures of them are compared before the
// lock, the rest are refused with account_locked, and then so is the right
// password.
func TestLockoutConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		cfg := testConfig()
		// A cost that takes a few ms keeps every guess in flight together.
		cfg.BcryptCost = 8
		cfg.Lockout = config.Lockout{MaxFailures: 5, Window: config.Duration(time.Minute)}
		h := newHarness(t, b, cfg)
		h.signup("race@example.com", goodPassword)
		body, err := json.Marshal(creds{"race@example.com", "Wrong-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		const n = 40
		statuses := make([]int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				res, err := h.client.Post(h.base+PathLogin, "application/json", strings.NewReader(string(body)))
				if err != nil {
					t.Error(err)
					return
				}
				_ = res.Body.Close()
				statuses[i] = res.StatusCode
			})
		}
		close(start)
		wg.Wait()
		var evaluated, locked int
		for _, st := range statuses {
			switch st {
			case http.StatusUnauthorized:
				evaluated++
			case http.StatusTooManyRequests:
				locked++
			default:
				t.Errorf("a wrong guess answered %d", st)
			}
		}
		t.Logf("%d concurrent wrong guesses: %d evaluated, %d refused as locked", n, evaluated, locked)
		if evaluated > cfg.Lockout.MaxFailures || evaluated+locked != n {
			t.Fatalf("%d concurrent wrong guesses: %d evaluated, %d locked; want at most %d evaluated",
				n, evaluated, locked, cfg.Lockout.MaxFailures)
		}
		wantError(t, h.do("POST", PathLogin, creds{"race@example.com", goodPassword}),
			http.StatusTooManyRequests, apierror.CodeAccountLocked)
	})
}

// TestLoginSlowCompare: a password comparison that outlasts the store
// deadline (bcrypt waiting for a CPU under load) does not turn the login
// into a 503. The calls before the comparison and those after it have
// deadlines of their own.
func TestLoginSlowCompare(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const timeout = 300 * time.Millisecond
		cfg := testConfig()
		cfg.Lockout = config.Lockout{MaxFailures: 2, Window: config.Duration(time.Minute)}
		h := newHarness(t, b, cfg, func(s *Server) {
			s.storeTimeout = timeout
			s.compare = func(hash, password []byte) error {
				time.Sleep(2 * timeout)
				return bcrypt.CompareHashAndPassword(hash, password)
			}
		})
		h.signup("slow@example.com", goodPassword)
		tk := h.login("slow@example.com", goodPassword)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(tk.AccessToken)), http.StatusOK)
		// Wrong passwords are counted before the comparison, so they lock
		// the account however long it takes.
		bad := creds{"slow@example.com", "Wrong-password-1"}
		for range 2 {
			wantError(t, h.do("POST", PathLogin, bad), http.StatusUnauthorized, apierror.CodeUnauthorized)
		}
		wantError(t, h.do("POST", PathLogin, creds{"slow@example.com", goodPassword}),
			http.StatusTooManyRequests, apierror.CodeAccountLocked)
	})
}

func TestLogout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		_, tk := h.account("henry@example.com")
		_, other := h.account("ivy@example.com")

		t.Run("needs a bearer token", func(t *testing.T) {
			wantError(t, h.do("POST", PathLogout, map[string]string{"refresh_token": tk.RefreshToken}), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
		t.Run("refuses another user's refresh token", func(t *testing.T) {
			r := h.do("POST", PathLogout, map[string]string{"refresh_token": other.RefreshToken}, bearer(tk.AccessToken))
			wantError(t, r, http.StatusBadRequest, apierror.CodeBadRequest)
			wantStatus(t, h.do("GET", PathMe, nil, bearer(tk.AccessToken)), http.StatusOK)
		})

		r := h.do("POST", PathLogout, map[string]string{"refresh_token": tk.RefreshToken}, bearer(tk.AccessToken))
		wantStatus(t, r, http.StatusNoContent)
		if r.cookie == nil || r.cookie.Value != "" || r.cookie.Path != "/v1/auth/" || !r.cookie.Expires.Before(time.Now()) {
			t.Fatalf("logout cookie = %+v, want it cleared", r.cookie)
		}
		c, err := h.srv.verifier.Verify(tk.AccessToken, auth.TypeAccess)
		if err != nil {
			t.Fatal(err)
		}
		// The jti itself is revoked (no revoke-all mark: iat 0 never matches one).
		revoked, err := h.rev.IsRevoked(context.Background(), []byte(c.ID), nil, 0, 0)
		if err != nil || !revoked {
			t.Fatalf("jti revoked = %v, %v", revoked, err)
		}
		e := wantError(t, h.do("GET", PathMe, nil, bearer(tk.AccessToken)), http.StatusUnauthorized, apierror.CodeUnauthorized)
		if e.Message != msgRevoked {
			t.Fatalf("message = %q", e.Message)
		}
		wantError(t, h.refresh(tk.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		// Other users are untouched.
		wantStatus(t, h.do("GET", PathMe, nil, bearer(other.AccessToken)), http.StatusOK)

		t.Run("refresh token from the cookie", func(t *testing.T) {
			tk := h.login("henry@example.com", goodPassword)
			wantStatus(t, h.do("POST", PathLogout, nil, bearer(tk.AccessToken), withCookie(tk.RefreshToken)), http.StatusNoContent)
			wantError(t, h.refresh(tk.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
		t.Run("bearer only ends the session", func(t *testing.T) {
			tk := h.login("henry@example.com", goodPassword)
			kept := h.login("henry@example.com", goodPassword)
			ac, err := h.srv.verifier.Verify(tk.AccessToken, auth.TypeAccess)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := h.srv.verifier.Verify(tk.RefreshToken, auth.TypeRefresh)
			if err != nil {
				t.Fatal(err)
			}
			if ac.Session == "" || ac.Session != rc.Session {
				t.Fatalf("access sid %q, refresh sid %q: want the same session", ac.Session, rc.Session)
			}
			wantStatus(t, h.do("POST", PathLogout, nil, bearer(tk.AccessToken)), http.StatusNoContent)
			wantError(t, h.refresh(tk.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
			// Only that session: the account's other one lives on.
			wantStatus(t, h.refresh(kept.RefreshToken), http.StatusOK)
		})
		t.Run("bearer only after a rotation", func(t *testing.T) {
			tk := h.login("henry@example.com", goodPassword)
			r := h.refresh(tk.RefreshToken)
			wantStatus(t, r, http.StatusOK)
			next := decodeTokens(t, r)
			wantStatus(t, h.do("POST", PathLogout, nil, bearer(next.AccessToken)), http.StatusNoContent)
			wantError(t, h.refresh(next.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
		t.Run("refresh token of another session of the account", func(t *testing.T) {
			a := h.login("henry@example.com", goodPassword)
			b := h.login("henry@example.com", goodPassword)
			r := h.do("POST", PathLogout, map[string]string{"refresh_token": b.RefreshToken}, bearer(a.AccessToken))
			wantStatus(t, r, http.StatusNoContent)
			wantError(t, h.refresh(a.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
			wantError(t, h.refresh(b.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		})
	})
}

// TestLogoutAll: tokens issued before the logout-all are revoked, tokens
// issued right after it are not.
func TestLogoutAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		_, s1 := h.account("jack@example.com")
		s2 := h.login("jack@example.com", goodPassword)
		_, other := h.account("kim@example.com")

		wantError(t, h.do("POST", PathLogoutAll, nil), http.StatusUnauthorized, apierror.CodeUnauthorized)

		r := h.do("POST", PathLogoutAll, nil, bearer(s1.AccessToken))
		wantStatus(t, r, http.StatusNoContent)
		for _, s := range []tokens{s1, s2} {
			wantError(t, h.do("GET", PathMe, nil, bearer(s.AccessToken)), http.StatusUnauthorized, apierror.CodeUnauthorized)
			wantError(t, h.refresh(s.RefreshToken), http.StatusUnauthorized, apierror.CodeUnauthorized)
		}
		after := h.login("jack@example.com", goodPassword)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(after.AccessToken)), http.StatusOK)
		r = h.refresh(after.RefreshToken)
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(decodeTokens(t, r).AccessToken)), http.StatusOK)
		wantStatus(t, h.do("GET", PathMe, nil, bearer(other.AccessToken)), http.StatusOK)
	})
}

// TestLogoutAllBackToBack repeats logout-all followed at once by a login:
// the new token (whole-second iat) is never caught by the mark, and the old
// one always is, whatever the point in the second the call came.
func TestLogoutAllBackToBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())
		_, tk := h.account("loop@example.com")
		for range 3 {
			wantStatus(t, h.do("POST", PathLogoutAll, nil, bearer(tk.AccessToken)), http.StatusNoContent)
			old := tk
			tk = h.login("loop@example.com", goodPassword)
			wantStatus(t, h.do("GET", PathMe, nil, bearer(tk.AccessToken)), http.StatusOK)
			wantStatus(t, h.do("GET", PathMe, nil, bearer(old.AccessToken)), http.StatusUnauthorized)
		}
	})
}

func TestRoutingAndRequestID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		h := newHarness(t, b, testConfig())

		r := h.do("GET", "/v1/auth/nope", nil, withHeader("X-Request-ID", "req-42"))
		e := wantError(t, r, http.StatusNotFound, apierror.CodeNotFound)
		if e.RequestID != "req-42" || r.header.Get("X-Request-ID") != "req-42" {
			t.Fatalf("request id not echoed: body %s header %q", r.body, r.header.Get("X-Request-ID"))
		}
		r = h.do("GET", "/v1/auth/nope", nil, withHeader("X-Request-ID", "bad id with spaces"))
		e = r.apiError(t)
		if e.RequestID == "" || e.RequestID == "bad id with spaces" || r.header.Get("X-Request-ID") != e.RequestID {
			t.Fatalf("an invalid request id was not replaced: %s", r.body)
		}
		e = wantError(t, h.do("GET", PathJWKS, nil), http.StatusNotFound, apierror.CodeNotFound)
		if e.Message != msgNoJWKS {
			t.Fatalf("message = %q", e.Message)
		}

		if err := h.srv.Close(); err != nil {
			t.Fatal(err)
		}
		wantError(t, h.do("POST", PathLogin, creds{"a@example.com", goodPassword}), http.StatusServiceUnavailable, apierror.CodeUnavailable)
	})
}
