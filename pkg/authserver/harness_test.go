package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/store"
	"github.com/gatewayd/gatewayd/pkg/store/bolt"
	"github.com/gatewayd/gatewayd/pkg/store/memory"
	"github.com/gatewayd/gatewayd/pkg/store/redis"
	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	// fasthttp refreshes its Date header from one process-wide goroutine
	// that never stops.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
}

const testSecret = "vlKTBDtGeGFvRVNRuKTh8rmy7ESPNuCutUFBwP5fJ5leOFR"

// testConfig is a valid config with bcrypt cost 4 (tests only).
func testConfig() *config.Auth {
	return &config.Auth{Secret: testSecret, BcryptCost: bcrypt.MinCost}
}

// backend opens fresh stores for one subtest.
type backend struct {
	name string
	open func(t testing.TB) (store.AuthStore, store.Revocations)
}

func boltBackend() backend {
	return backend{name: "bolt", open: func(t testing.TB) (store.AuthStore, store.Revocations) {
		t.Helper()
		b, err := bolt.Open(filepath.Join(t.TempDir(), "data", "users.db"))
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.New()
		t.Cleanup(func() {
			_ = b.Close()
			_ = mem.Close()
		})
		return b, mem
	}}
}

// redisBackend shares one redis-server between the subtests of t, flushed
// before each.
func redisBackend(t *testing.T) backend {
	srv := redistest.Start(t)
	return backend{name: "redis", open: func(t testing.TB) (store.AuthStore, store.Revocations) {
		t.Helper()
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		rs, err := redis.New(&config.Redis{Addrs: []string{srv.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rs.Close() })
		return redis.NewAuth(rs), rs
	}}
}

// forEachBackend runs fn as a subtest against bolt and against Redis.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range []backend{boltBackend(), redisBackend(t)} {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// harness is a Server on a real 127.0.0.1 listener.
type harness struct {
	t      *testing.T
	srv    *Server
	users  store.AuthStore
	rev    store.Revocations
	base   string
	client *http.Client
}

// newHarness serves a new Server on b's stores; each tune changes the
// Server before it serves.
func newHarness(t *testing.T, b backend, cfg *config.Auth, tune ...func(*Server)) *harness {
	t.Helper()
	users, rev := b.open(t)
	return serve(t, cfg, users, rev, tune...)
}

func serve(t *testing.T, cfg *config.Auth, users store.AuthStore, rev store.Revocations, tune ...func(*Server)) *harness {
	t.Helper()
	srv, err := New(cfg, users, rev, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tune {
		f(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A short idle duration lets the worker pool's cleaner exit soon after
	// Shutdown, before goleak looks.
	fs := &fasthttp.Server{Handler: srv.Handle, MaxRequestBodySize: 1 << 20, MaxIdleWorkerDuration: 20 * time.Millisecond}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fs.Serve(ln)
	}()
	tr := &http.Transport{}
	h := &harness{
		t: t, srv: srv, users: users, rev: rev,
		base:   "http://" + ln.Addr().String(),
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = fs.Shutdown()
		_ = ln.Close() // in case Serve had not taken it up yet (Shutdown then ignores it)
		<-done
		_ = srv.Close()
	})
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
	cookie *http.Cookie // the refresh_token Set-Cookie, if any
}

// apiError is the SPEC §5 error body.
type apiError struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
	RetryAfter int64  `json:"retry_after"`
}

func (r *response) apiError(t *testing.T) apiError {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json (body %s)", ct, r.body)
	}
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if e.Error == "" || e.Message == "" {
		t.Fatalf("error body %s lacks error or message", r.body)
	}
	return e
}

// opt changes a request.
type opt func(*http.Request)

func bearer(token string) opt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func withCookie(token string) opt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: token}) }
}

func withHeader(k, v string) opt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// do sends method path with body (nil, a string sent raw, or a value
// encoded as JSON).
func (h *harness) do(method, path string, body any, opts ...opt) *response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, h.base+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	out := &response{status: res.StatusCode, header: res.Header, body: data}
	for _, c := range res.Cookies() {
		if c.Name == CookieName {
			out.cookie = c
		}
	}
	return out
}

type creds struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

const goodPassword = "Correct-Horse-42"

func (h *harness) signup(email, password string) string {
	h.t.Helper()
	r := h.do("POST", PathSignup, creds{email, password})
	if r.status != http.StatusCreated {
		h.t.Fatalf("signup %s: status %d %s", email, r.status, r.body)
	}
	var u struct{ ID string }
	if err := json.Unmarshal(r.body, &u); err != nil {
		h.t.Fatal(err)
	}
	return u.ID
}

func (h *harness) login(email, password string) tokens {
	h.t.Helper()
	r := h.do("POST", PathLogin, creds{email, password})
	if r.status != http.StatusOK {
		h.t.Fatalf("login %s: status %d %s", email, r.status, r.body)
	}
	return decodeTokens(h.t, r)
}

func decodeTokens(t *testing.T, r *response) tokens {
	t.Helper()
	var tk tokens
	if err := json.Unmarshal(r.body, &tk); err != nil {
		t.Fatalf("tokens %s: %v", r.body, err)
	}
	if tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("tokens missing in %s", r.body)
	}
	return tk
}

// account signs up and logs in a fresh user.
func (h *harness) account(email string) (string, tokens) {
	h.t.Helper()
	id := h.signup(email, goodPassword)
	return id, h.login(email, goodPassword)
}

func (h *harness) refresh(token string) *response {
	h.t.Helper()
	return h.do("POST", PathRefresh, map[string]string{"refresh_token": token})
}

func wantStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d (body %s)", r.status, want, r.body)
	}
}

func wantError(t *testing.T, r *response, status int, code string) apiError {
	t.Helper()
	wantStatus(t, r, status)
	e := r.apiError(t)
	if e.Error != code {
		t.Fatalf("error code = %q, want %q (%s)", e.Error, code, r.body)
	}
	return e
}
