package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"gopkg.in/yaml.v3"
)

const unitFile = "systemd/gatewayd.service"

// unit is a parsed systemd unit: section -> key -> values in order
// (a key may repeat; an empty assignment is kept as "").
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case section == "":
			t.Fatalf("%s:%d: %q outside a section", path, n, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: %q is not KEY=VALUE", path, n, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

// last returns the effective value of a single-valued key.
func (u unit) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// shutdownBudget is the longest shutdown_delay + shutdown_timeout among the
// defaults and the sample configurations an operator would install.
func shutdownBudget(t *testing.T) time.Duration {
	t.Helper()
	budget := config.DefaultShutdownTimeout
	files, _ := filepath.Glob(filepath.Join(moduleRoot(t), "configs", "gateway*.yaml"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Server struct {
				ShutdownTimeout string `yaml:"shutdown_timeout"`
				ShutdownDelay   string `yaml:"shutdown_delay"`
			} `yaml:"server"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		total := time.Duration(0)
		for _, s := range []string{doc.Server.ShutdownTimeout, doc.Server.ShutdownDelay} {
			if s == "" {
				continue
			}
			d, err := config.ParseDuration(s)
			if err != nil {
				t.Fatalf("%s: %q: %v", f, s, err)
			}
			total += d
		}
		if doc.Server.ShutdownTimeout == "" {
			total += config.DefaultShutdownTimeout
		}
		budget = max(budget, total)
	}
	return budget
}

func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, unitFile)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("no [%s] section", s)
		}
	}
	exact := []struct {
		giveKey   string
		wantValue string
	}{
		{giveKey: "KillSignal", wantValue: "SIGTERM"},
		{giveKey: "Restart", wantValue: "on-failure"},
		{giveKey: "NoNewPrivileges", wantValue: "yes"},
		{giveKey: "ProtectSystem", wantValue: "strict"},
		{giveKey: "ProtectHome", wantValue: "yes"},
		{giveKey: "PrivateTmp", wantValue: "yes"},
		{giveKey: "PrivateDevices", wantValue: "yes"},
		{giveKey: "MemoryDenyWriteExecute", wantValue: "yes"},
		{giveKey: "CapabilityBoundingSet", wantValue: ""},
		{giveKey: "StateDirectory", wantValue: "gatewayd"},
		{giveKey: "WorkingDirectory", wantValue: "/var/lib/gatewayd"},
	}
	for _, tt := range exact {
		t.Run(tt.giveKey, func(t *testing.T) {
			got, ok := u.last("Service", tt.giveKey)
			if !ok || got != tt.wantValue {
				t.Fatalf("%s=%q (set: %v), want %q", tt.giveKey, got, ok, tt.wantValue)
			}
		})
	}
	svc := u["Service"]
	// gatewayd speaks sd_notify (internal/sdnotify; e2e TestSystemdNotify):
	// READY=1 once it serves, WATCHDOG=1 at half WatchdogSec.
	if typ, _ := u.last("Service", "Type"); typ != "notify" {
		t.Errorf("Type=%s, want notify: gatewayd sends READY=1 once it serves", typ)
	}
	if acc, _ := u.last("Service", "NotifyAccess"); acc != "main" {
		t.Errorf("NotifyAccess=%s, want main: only gatewayd itself notifies", acc)
	}
	if wd, ok := u.last("Service", "WatchdogSec"); ok {
		d, err := time.ParseDuration(wd)
		if err != nil || d < 10*time.Second {
			t.Errorf("WatchdogSec=%s: want a duration of at least 10s, so a busy host does not get the gateway killed", wd)
		}
	}
	if fams := strings.Join(svc["RestrictAddressFamilies"], " "); !strings.Contains(fams, "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies=%s, want AF_UNIX: the notification socket is a unix socket", fams)
	}
	start, _ := u.last("Service", "ExecStart")
	if f := strings.Fields(start); len(f) < 3 || filepath.Base(f[0]) != "gatewayd" || !slices.Contains(f, "-config") {
		t.Errorf("ExecStart=%s, want gatewayd -config FILE", start)
	}
	if !slices.Contains(svc["ExecReload"], "/bin/kill -HUP $MAINPID") {
		t.Errorf("ExecReload=%v, want /bin/kill -HUP $MAINPID", svc["ExecReload"])
	}
	stop, _ := u.last("Service", "TimeoutStopSec")
	d, err := time.ParseDuration(stop)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", stop, err)
	}
	if budget := shutdownBudget(t); d <= budget {
		t.Errorf("TimeoutStopSec=%s, want more than shutdown_delay + shutdown_timeout = %s", stop, budget)
	}
	dyn, _ := u.last("Service", "DynamicUser")
	user, _ := u.last("Service", "User")
	if dyn != "yes" && (user == "" || user == "root") {
		t.Error("neither DynamicUser=yes nor an unprivileged User=")
	}
	if len(svc["EnvironmentFile"]) == 0 {
		t.Error("no EnvironmentFile= for the secrets")
	}
	if fams := strings.Join(svc["RestrictAddressFamilies"], " "); !strings.Contains(fams, "AF_INET") || !strings.Contains(fams, "AF_INET6") {
		t.Errorf("RestrictAddressFamilies=%s, want AF_INET and AF_INET6", fams)
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter=%v, want @system-service", svc["SystemCallFilter"])
	}
	// Capabilities only when a privileged port needs them.
	if ambient, _ := u.last("Service", "AmbientCapabilities"); ambient != "" {
		t.Errorf("AmbientCapabilities=%s, but the default ports need none", ambient)
	}
}

// TestSystemdAnalyzeVerify runs `systemd-analyze verify` on the unit (with
// ExecStart pointing at a freshly built gatewayd, since verify requires the
// binary to exist) and fails on any complaint about it.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: the unit is checked by TestSystemdUnit only")
	}
	if testing.Short() {
		t.Skip("builds gatewayd; skipped with -short")
	}
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	bin := gatewaytest.Binary(t, "gatewayd")
	dir := t.TempDir()
	path := filepath.Join(dir, "gatewayd.service")
	unitText := strings.ReplaceAll(string(data), "/usr/local/bin/gatewayd", bin)
	if err := os.WriteFile(path, []byte(unitText), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(sa, "verify", path).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "gatewayd.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}

	// The offline security score, where this systemd supports it.
	out, err = exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline unavailable: %v", err)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for gatewayd\.service: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security exposure: %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0 (\"OK\"):\n%s", score, out)
	}
}
