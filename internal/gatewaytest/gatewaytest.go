// Package gatewaytest builds and runs the real gatewayd (and authd) binaries
// for end-to-end tests: a config template with free ports filled in, a
// readiness wait on /readyz, captured logs and signals.
package gatewaytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// build is one set of binaries, built once per test process.
type build struct {
	once sync.Once
	dir  string
	err  error
}

var (
	// builds[true] is built with -race when the tests run with it.
	builds = map[bool]*build{false: {}, true: {}}
)

// moduleRoot finds the directory holding go.mod.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary returns the path of a freshly built binary of ./cmd/<name> (built
// once per test process, with -race when the tests run with it).
func Binary(t testing.TB, name string) string {
	t.Helper()
	return binary(t, name, raceEnabled)
}

// PlainBinary is Binary without the race detector, whatever the tests run
// with: for measuring the process's memory, which the race detector
// multiplies.
func PlainBinary(t testing.TB, name string) string {
	t.Helper()
	return binary(t, name, false)
}

func binary(t testing.TB, name string, race bool) string {
	t.Helper()
	b := builds[race]
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "gatewayd-e2e-bin-")
		if b.err != nil {
			return
		}
		args := []string{"build", "-o", b.dir + "/"}
		if race {
			args = append(args, "-race")
		}
		args = append(args, "./cmd/gatewayd", "./cmd/authd", "./cmd/demo-upstream")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return filepath.Join(b.dir, name)
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

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Process is a running gatewayd.
type Process struct {
	t          testing.TB
	Cmd        *exec.Cmd
	Addr       string // client listener, 127.0.0.1:port
	AdminAddr  string
	ConfigPath string
	Dir        string
	logs       *syncBuffer
	done       chan struct{}
	exitCode   int
}

// Options tune Start.
type Options struct {
	// Env is added to the process environment (KEY=VALUE).
	Env []string
	// Args replace the default arguments (-config <file>).
	Args []string
	// NoWait skips the readiness wait.
	NoWait bool
	// NoRace runs a binary built without the race detector even when the
	// tests run with it (see PlainBinary).
	NoRace bool
}

// Render replaces {{LISTEN}} and {{ADMIN}} (and {{DIR}}, the temp dir) in a
// config template.
func Render(tmpl string, listen, admin, dir string) string {
	r := strings.NewReplacer("{{LISTEN}}", listen, "{{ADMIN}}", admin, "{{DIR}}", dir)
	return r.Replace(tmpl)
}

// Start writes cfg (a template, see Render) and runs gatewayd on it, then
// waits until /readyz answers 200. The process is killed at cleanup.
func Start(t testing.TB, cfg string, opts ...Options) *Process {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dir := t.TempDir()
	p := &Process{
		t:         t,
		Addr:      "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		AdminAddr: "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		Dir:       dir,
		logs:      &syncBuffer{},
		done:      make(chan struct{}),
	}
	p.ConfigPath = filepath.Join(dir, "gateway.yaml")
	p.WriteConfig(cfg)
	args := o.Args
	if args == nil {
		args = []string{"-config", p.ConfigPath}
	}
	bin := Binary(t, "gatewayd")
	if o.NoRace {
		bin = PlainBinary(t, "gatewayd")
	}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Dir = dir
	p.Cmd.Env = append(os.Environ(), o.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.logs, p.logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.Cmd.Wait()
		p.exitCode = p.Cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("gatewayd logs:\n%s", p.Logs())
		}
	})
	if !o.NoWait {
		p.WaitReady(30 * time.Second)
	}
	return p
}

// WriteConfig (re)writes the config file from a template.
func (p *Process) WriteConfig(tmpl string) {
	p.t.Helper()
	if err := os.WriteFile(p.ConfigPath, []byte(Render(tmpl, p.Addr, p.AdminAddr, p.Dir)), 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// WaitReady waits for /readyz to answer 200.
func (p *Process) WaitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			p.t.Fatalf("gatewayd exited with %d before it was ready:\n%s", p.exitCode, p.Logs())
		default:
		}
		resp, err := c.Get("http://" + p.AdminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("gatewayd not ready after %v:\n%s", timeout, p.Logs())
}

// URL returns the client-facing URL of path.
func (p *Process) URL(path string) string { return "http://" + p.Addr + path }

// AdminURL returns the admin URL of path.
func (p *Process) AdminURL(path string) string { return "http://" + p.AdminAddr + path }

// Logs returns everything the process wrote so far.
func (p *Process) Logs() string { return p.logs.String() }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.exitCode, nil
	case <-time.After(timeout):
		return -1, context.DeadlineExceeded
	}
}

// WaitLog waits until the logs contain s.
func (p *Process) WaitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Logs(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// RunCheck runs `gatewayd -check -config file` and returns its exit code
// and combined output.
func RunCheck(t testing.TB, file string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(Binary(t, "gatewayd"), "-check", "-config", file)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}
