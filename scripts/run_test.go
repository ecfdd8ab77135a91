// Package scripts holds the test of run.sh, the script behind `make run`.
package scripts

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// TestRunBanner runs scripts/run.sh with the real binaries on free loopback
// ports: the banner names gatewayd's real PID (a SIGHUP sent to it reloads),
// comes whole before the first log line, and the gateway answers on the
// loopback address it printed.
func TestRunBanner(t *testing.T) {
	bin := filepath.Dir(gatewaytest.Binary(t, "gatewayd"))
	listen := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	demo := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))

	cmd := exec.Command("bash", "run.sh")
	cmd.Env = append(os.Environ(), "BIN_DIR="+bin, "GATEWAY_LISTEN="+listen, "GATEWAY_ADMIN="+admin,
		"DEMO_UPSTREAM="+demo, "GATEWAYD_LOG="+filepath.Join(t.TempDir(), "gatewayd.log"),
		"JWT_SECRET=Qm9vdHN0cmFwLXRlc3Qtc2VjcmV0LWZvci1ydW4tc2gtMjAyNg")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		// Whatever happened, nothing the script started outlives the test.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		done <- cmd.Wait()
	}()
	deadline := time.After(60 * time.Second)
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("run.sh ended while waiting for %s", what)
			}
			return l
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
		return ""
	}

	pidLine := regexp.MustCompile(`^gatewayd \(pid (\d+)\) is listening on (\S+) \(admin on (\S+)\)`)
	hupLine := regexp.MustCompile(`kill -HUP (\d+) `)
	var pid, hupPID string
	for hupPID == "" {
		l := next("the banner")
		if strings.HasPrefix(l, "{") {
			t.Fatalf("log line before the end of the banner: %s", l)
		}
		if m := pidLine.FindStringSubmatch(l); m != nil {
			pid = m[1]
			if m[2] != listen || m[3] != admin {
				t.Errorf("banner addresses %s, %s; want %s, %s", m[2], m[3], listen, admin)
			}
		}
		if m := hupLine.FindStringSubmatch(l); m != nil {
			hupPID = m[1]
		}
		if strings.Contains(l, "<pid>") {
			t.Errorf("banner without the PID: %s", l)
		}
	}
	if pid == "" || pid != hupPID {
		t.Fatalf("banner PIDs %q and %q", pid, hupPID)
	}

	resp, err := http.Get("http://" + listen + "/public/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /public/hello: %d", resp.StatusCode)
	}

	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, syscall.SIGHUP); err != nil {
		t.Fatalf("kill -HUP %d: %v", n, err)
	}
	for {
		l := next("the reload in the log")
		if strings.Contains(l, `"reload: configuration file unchanged"`) && strings.Contains(l, `"SIGHUP"`) {
			break
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
			t.Errorf("run.sh after SIGTERM: %v, want exit status 143", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run.sh did not exit after SIGTERM")
	}
	if err := syscall.Kill(n, 0); err == nil {
		t.Errorf("gatewayd (pid %d) still running after run.sh exited", n)
	}
	if resp, err := http.Get("http://" + demo + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the demo upstream on %s still answers after run.sh exited", demo)
	}
}
