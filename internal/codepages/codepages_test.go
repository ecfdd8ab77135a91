//go:build linux

package codepages

import (
	"bytes"
	"os"
	"strconv"
	"testing"
)

// rssFile reads the process's resident file-backed memory, in KiB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("RssFile:")); ok {
			n, err := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseDropsCodePages: after Release the test binary's resident
// file pages shrink to what runs afterwards, and the process goes on
// running (every page it needs comes back on its first touch).
func TestReleaseDropsCodePages(t *testing.T) {
	before := rssFile(t)
	released, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if released == 0 {
		t.Fatal("Release found no read-only mapping of the executable")
	}
	after := rssFile(t)
	t.Logf("RssFile %d KiB before, %d KiB after; %d KiB of mappings released", before, after, released>>10)
	if after >= before {
		t.Fatalf("RssFile did not fall: %d KiB before, %d KiB after", before, after)
	}
	// The process still runs code it had not run since (and code it had).
	var buf bytes.Buffer
	for i := range 1000 {
		buf.WriteString(strconv.Itoa(i))
	}
	if buf.Len() == 0 {
		t.Fatal("no output")
	}
	if _, err := Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
}
