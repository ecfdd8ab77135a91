// Package redistest starts throwaway redis-server processes for tests, on a
// free loopback port, so a test can kill and restart its server for fault
// tests. With REDIS_ADDR set, tests use that server instead (and fault tests
// that need to kill it skip).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallHint is printed when redis-server is missing.
const InstallHint = "redis-server not found: install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_ADDR=host:port"

// Server is one redis-server process owned by a test.
type Server struct {
	t        testing.TB
	addr     string
	port     int
	dir      string
	external bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	paused bool
}

// Start starts a redis-server for t and stops it at t's cleanup. Extra
// arguments are passed to redis-server (e.g. "--cluster-enabled", "yes").
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if addr := os.Getenv("REDIS_ADDR"); addr != "" && len(args) == 0 {
		return &Server{t: t, addr: addr, external: true}
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal(InstallHint)
	}
	s := &Server{t: t, port: FreePort(t), dir: t.TempDir()}
	s.addr = "127.0.0.1:" + strconv.Itoa(s.port)
	s.start(args)
	t.Cleanup(s.Kill)
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.addr }

// External reports whether the server was given by REDIS_ADDR (and cannot
// be killed or restarted).
func (s *Server) External() bool { return s.external }

// RequireOwned skips t when the server is external.
func (s *Server) RequireOwned(t testing.TB) {
	if s.external {
		t.Skip("REDIS_ADDR is set: this test needs to kill its own redis-server")
	}
}

func (s *Server) start(args []string) {
	s.t.Helper()
	all := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning",
	}
	all = append(all, args...)
	cmd := exec.Command("redis-server", all...)
	out, _ := os.Create(s.dir + "/redis.log")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.addr) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.dir + "/redis.log")
	s.t.Fatalf("redis-server on %s did not become ready: %s", s.addr, log)
}

// Kill stops the server at once (SIGKILL), like a crash. Data is lost. A
// paused server is resumed first, so no stopped process outlives the test.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.paused = false
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Pause stops the server process (SIGSTOP) without closing its sockets:
// the kernel still accepts connections and data, but nothing is answered,
// like a hung or black-holed server. Resume (or Kill, at cleanup) lets it
// go on.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP, true) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT, false) }

// Paused reports whether the server is paused.
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

func (s *Server) signal(sig syscall.Signal, paused bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		s.t.Fatalf("redis-server %s is not running", s.addr)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server %s: %v", s.addr, err)
	}
	s.paused = paused
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart(args ...string) {
	s.t.Helper()
	s.Kill()
	s.start(args)
}

// Do sends one command over a fresh connection and returns the raw reply's
// first line; for test assertions and setup (FLUSHALL, SCRIPT FLUSH).
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	return strings.TrimLeft(line, "+:"), nil
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
