package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// watchConfig is a watched configuration with one route; extra adds routes.
const watchConfig = `
version: 1
watch: true
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, access_log: false }
upstreams:
  a: { targets: ["http://%s"] }
routes:
  - name: first
    match: { path: /first }
    upstream: a
%s`

const watchSecondRoute = `  - name: second
    match: { path: /second }
    upstream: a
`

// waitStatus polls url until it answers want, for at most timeout.
func waitStatus(t *testing.T, url string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got int
	for time.Now().Before(deadline) {
		if got = do(t, "GET", url, nil, "").Status; got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: %d after %v, want %d", url, got, timeout, want)
}

func TestWatchReloadsEditedFile(t *testing.T) {
	up := startEcho(t, "A")
	base := fmt.Sprintf(watchConfig, up, "")
	gw := gatewaytest.Start(t, base)
	if got := do(t, "GET", gw.URL("/second"), nil, "").Status; got != 404 {
		t.Fatalf("/second before the edit: %d", got)
	}

	// An editor's atomic save: a new file renamed over the old one.
	tmp := gw.ConfigPath + ".swp"
	if err := os.WriteFile(tmp, []byte(gatewaytest.Render(fmt.Sprintf(watchConfig, up, watchSecondRoute), gw.Addr, gw.AdminAddr, gw.Dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, gw.ConfigPath); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, gw.URL("/second"), 200, 2*time.Second)

	// A broken edit is a failed reload; the last good configuration serves.
	failures := metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`)
	gw.WriteConfig(fmt.Sprintf(watchConfig, up, watchSecondRoute+"  - name: third\n    upstream: nowhere\n"))
	deadline := time.Now().Add(2 * time.Second)
	for metricValue(t, gw, `gateway_config_reloads_total{result="failure"}`) != failures+1 {
		if time.Now().After(deadline) {
			t.Fatalf("broken edit not counted as a failed reload:\n%s", gw.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !gw.WaitLog(`"source":"watch"`, time.Second) {
		t.Fatal("the watcher's reload is not logged with source watch")
	}
	if got := do(t, "GET", gw.URL("/second"), nil, "").Status; got != 200 {
		t.Fatalf("/second after a broken edit: %d", got)
	}

	// The file keeps being watched after the rename and the failure.
	gw.WriteConfig(base)
	waitStatus(t, gw.URL("/second"), 404, 2*time.Second)
}

func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	up := startEcho(t, "A")
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(gatewaytest.FreePort(t))
	// The layout the kubelet writes for a mounted ConfigMap.
	version := func(name, extra string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := gatewaytest.Render(fmt.Sprintf(watchConfig, up, extra), addr, admin, dir)
		if err := os.WriteFile(filepath.Join(dir, name, "gateway.yaml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_03_v1", "")
	if err := os.Symlink("..2026_12_03_v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.Symlink("..data/gateway.yaml", path); err != nil {
		t.Fatal(err)
	}

	gw := gatewaytest.Start(t, "", gatewaytest.Options{Args: []string{"-config", path}, NoWait: true})
	gw.Addr, gw.AdminAddr = addr, admin
	gw.WaitReady(30 * time.Second)
	if got := do(t, "GET", gw.URL("/second"), nil, "").Status; got != 404 {
		t.Fatalf("/second before the update: %d", got)
	}

	// The update: a new version, a new link renamed over ..data, the old
	// version removed.
	version("..2026_12_03_v2", watchSecondRoute)
	if err := os.Symlink("..2026_12_03_v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_12_03_v1")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, gw.URL("/second"), 200, 2*time.Second)
}
