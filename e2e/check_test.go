package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// TestCheckNeedsConfig: -check names the file it validates; without
// -config it is a usage error, not a check of configs/gateway.yaml or the
// embedded default.
func TestCheckNeedsConfig(t *testing.T) {
	cmd := exec.Command(gatewaytest.Binary(t, "gatewayd"), "-check")
	// A directory with configs/gateway.yaml would otherwise be checked.
	cmd.Dir = "../"
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("-check without -config: exit %d, want 2:\n%s", code, out)
	}
	if !strings.Contains(string(out), "-check needs -config FILE") || strings.Contains(string(out), "configuration OK") {
		t.Fatalf("-check without -config:\n%s", out)
	}
}

// TestCheckReportsEveryErrorOnce: the binary prints decode and semantic
// errors of one file in one pass, one FILE:LINE line each.
func TestCheckReportsEveryErrorOnce(t *testing.T) {
	code, out := gatewaytest.RunCheck(t, "../testdata/config/invalid/decode_and_semantic.yaml")
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := []string{
		`../testdata/config/invalid/decode_and_semantic.yaml:4: log.levle: unknown field "levle" (did you mean "level"?)`,
		`../testdata/config/invalid/decode_and_semantic.yaml:8: upstreams.users.health_check.timeout: must not exceed the interval 1s, got 5s`,
		`../testdata/config/invalid/decode_and_semantic.yaml:9: upstreams.users.retries: expected an integer, got "lots"`,
		`3 errors`,
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("-check output:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
}
