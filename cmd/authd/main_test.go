package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/redistest"
	"github.com/gatewayd/gatewayd/pkg/plugins/apikey"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testSecret = "FZv6dNnpNXHag2URJyTOZqSmhqQpge_DSxxlGTIul80F9Blu"

func runCmd(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code = run(args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExampleConfig(t *testing.T) {
	t.Setenv("JWT_SECRET", testSecret)
	code, out, errOut := runCmd(t, nil, "-config", "../../configs/auth.yaml", "-check")
	if code != 0 || out != "configuration OK\n" {
		t.Fatalf("check = %d %q %q", code, out, errOut)
	}
}

func TestCheckReportsEveryError(t *testing.T) {
	path := writeFile(t, "bad.yaml", strings.Join([]string{
		"lisen: \":9000\"",
		"log: { level: loud }",
		"redis: { addrs: [] }",
		"auth:",
		"  secret: ${AUTHD_TEST_UNSET_SECRET}",
		"  bcrypt_cost: 99",
		"  lockout: { max_failure: 3 }",
		"",
	}, "\n"))
	code, out, errOut := runCmd(t, nil, "-config", path, "-check")
	want := strings.Join([]string{
		path + `:1: lisen: unknown field "lisen" (did you mean "listen"?)`,
		path + `:2: log.level: expected debug, info, warn or error, got "loud"`,
		path + `:3: redis.addrs: at least one address is required (host:port)`,
		path + `:5: auth.secret: environment variable AUTHD_TEST_UNSET_SECRET is not set`,
		path + `:6: auth.bcrypt_cost: must be between 4 and 31, got 99`,
		path + `:7: auth.lockout.max_failure: unknown field "max_failure" (did you mean "max_failures"?)`,
		"",
	}, "\n")
	if code != 1 || out != "" || errOut != want {
		t.Fatalf("check = %d\nstdout %q\nstderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, nil, "-version")
	if code != 0 || out != "authd dev\n" {
		t.Fatalf("-version = %d %q", code, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
}

// TestServe runs user add and the service against the embedded store and
// Redis, then stops it with SIGTERM.
func TestServe(t *testing.T) {
	tests := []struct {
		name        string
		giveRedis   bool
		wantWarning bool
	}{
		{name: "bolt", wantWarning: true},
		{name: "redis", giveRedis: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			cfgText := "listen: \"" + addr + "\"\nshutdown_timeout: 5s\nauth:\n  secret: " + testSecret +
				"\n  bcrypt_cost: 4\n  users_file: " + filepath.Join(t.TempDir(), "db", "users.db") + "\n"
			if tt.giveRedis {
				cfgText += "redis:\n  addrs: [\"" + redistest.Start(t).Addr() + "\"]\n"
			}
			path := writeFile(t, "auth.yaml", cfgText)

			code, out, errOut := runCmd(t, strings.NewReader("Admin-password-1\n"),
				"user", "add", "--email", "Root@Example.com", "--role", "admin", "-config", path)
			if code != 0 || !strings.Contains(out, "root@example.com, role admin") || strings.Contains(out, "password:") {
				t.Fatalf("user add = %d %q %q", code, out, errOut)
			}
			code, _, errOut = runCmd(t, strings.NewReader("Admin-password-1\n"),
				"user", "add", "--email", "root@example.com", "-config", path)
			if code != 1 || !strings.Contains(errOut, "already exists") {
				t.Fatalf("duplicate user add = %d %q", code, errOut)
			}

			fc, err := loadConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zapcore.InfoLevel)
			sigs := make(chan os.Signal, 2)
			served := make(chan error, 1)
			go func() { served <- serve(fc, zap.New(core), sigs) }()
			waitUp(t, addr)

			body, _ := json.Marshal(map[string]string{"email": "root@example.com", "password": "Admin-password-1"})
			res, err := http.Post("http://"+addr+"/v1/auth/login", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var tk struct {
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(res.Body).Decode(&tk)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("login: %d %v", res.StatusCode, err)
			}
			req, _ := http.NewRequest("GET", "http://"+addr+"/v1/auth/me", nil)
			req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var me struct{ Role string }
			err = json.NewDecoder(res.Body).Decode(&me)
			res.Body.Close()
			if err != nil || me.Role != "admin" {
				t.Fatalf("me: role %q, %v", me.Role, err)
			}
			http.DefaultClient.CloseIdleConnections()

			sigs <- syscall.SIGHUP
			sigs <- syscall.SIGTERM
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not stop after SIGTERM")
			}
			warned := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("a gateway cannot see them").Len() > 0
			if warned != tt.wantWarning {
				t.Fatalf("revocation warning logged = %v, want %v", warned, tt.wantWarning)
			}
		})
	}
}

func waitUp(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("authd did not listen on %s", addr)
}

func TestUserAddGeneratesPassword(t *testing.T) {
	path := writeFile(t, "auth.yaml", "auth:\n  secret: "+testSecret+"\n  bcrypt_cost: 4\n  users_file: "+
		filepath.Join(t.TempDir(), "users.db")+"\n")
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	code, out, errOut := runCmd(t, devNull, "user", "add", "--email", "gen@example.com", "-config", path)
	if code != 0 {
		t.Fatalf("user add = %d %q", code, errOut)
	}
	_, pw, ok := strings.Cut(out, "password: ")
	if !ok || len(strings.TrimSpace(pw)) != 20 {
		t.Fatalf("no generated password in %q", out)
	}
}

func TestUserAddRejects(t *testing.T) {
	path := writeFile(t, "auth.yaml", "auth:\n  secret: "+testSecret+"\n  bcrypt_cost: 4\n  users_file: "+
		filepath.Join(t.TempDir(), "users.db")+"\n")
	tests := []struct {
		name      string
		giveArgs  []string
		giveStdin string
		wantErr   string
	}{
		{"weak password", []string{"--email", "a@example.com"}, "password\n", "password must be at least 10 characters long"},
		{"bad email", []string{"--email", "nope"}, "Good-password-1\n", "email must be a valid address"},
		{"bad role", []string{"--email", "a@example.com", "--role", "Admin!"}, "Good-password-1\n", "role must be"},
		{"empty stdin", []string{"--email", "a@example.com"}, "", "no password on stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"user", "add", "-config", path}, tt.giveArgs...)
			code, _, errOut := runCmd(t, strings.NewReader(tt.giveStdin), args...)
			if code != 1 || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("= %d %q, want an error containing %q", code, errOut, tt.wantErr)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"apikey", "--id", "ci-bot", "--roles", "admin, deploy", "--expires", "2999-01-01T00:00:00Z"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("output:\n%s", out.String())
	}
	key, entry := lines[1], lines[4]
	var e apikey.Entry
	if err := json.Unmarshal([]byte(entry), &e); err != nil {
		t.Fatalf("entry %q: %v", entry, err)
	}
	if !strings.HasPrefix(key, apikey.KeyPrefix) || e.SHA256 != apikey.Sum(key) || e.ID != "ci-bot" || e.Sub != "ci-bot" ||
		strings.Join(e.Roles, ",") != "admin,deploy" || e.Expires != "2999-01-01T00:00:00Z" {
		t.Errorf("key %q entry %+v", key, e)
	}
	if strings.Contains(entry, key) {
		t.Error("the entry holds the key itself")
	}
	for _, args := range [][]string{{"apikey"}, {"apikey", "--id", "x", "--expires", "soon"}, {"apikey", "--id", "x", "--expires", "2001-01-01T00:00:00Z"}} {
		if code := run(args, strings.NewReader(""), &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestServeNotify runs the service as systemd's Type=notify would: READY=1
// once it listens, STOPPING=1 on SIGTERM.
func TestServeNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	recv := func(want string) {
		t.Helper()
		buf := make([]byte, 256)
		if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("notification %q, %v; want %s", buf[:n], err, want)
		}
	}

	addr := freeAddr(t)
	path := writeFile(t, "auth.yaml", "listen: \""+addr+"\"\nshutdown_timeout: 5s\nauth:\n  secret: "+testSecret+
		"\n  bcrypt_cost: 4\n  users_file: "+filepath.Join(t.TempDir(), "users.db")+"\n")
	fc, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	served := make(chan error, 1)
	go func() { served <- serve(fc, zap.NewNop(), sigs) }()
	recv("READY=1")
	// Ready means listening: no retry needed.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial right after READY=1: %v", err)
	}
	c.Close()
	sigs <- syscall.SIGTERM
	recv("STOPPING=1")
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
}
