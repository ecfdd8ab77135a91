package gateway

import (
	"testing"

	"github.com/gatewayd/gatewayd/pkg/proxy"
)

// TestUpstreamPoolKeepsTargetsAcrossPolicyChanges: a reload that changes
// only weights or retry settings gets an upstream over the same target set
// (connections and health state kept); one that changes a target gets a
// new one; the target set closes with its last reference.
func TestUpstreamPoolKeepsTargetsAcrossPolicyChanges(t *testing.T) {
	p := newUpstreamPool(nil)
	base := proxy.Config{Name: "u", Targets: []string{"http://127.0.0.1:9", "http://127.0.0.2:9"}}
	reweighted := base
	reweighted.Weights = []int{9, 1}
	reweighted.Retries, reweighted.RetryOn = 1, []string{"connect", "503"}
	moved := base
	moved.Targets = []string{"http://127.0.0.1:9", "http://127.0.0.3:9"}

	a, releaseA, err := p.acquire(base)
	if err != nil {
		t.Fatal(err)
	}
	same, releaseSame, err := p.acquire(base)
	if err != nil || same != a {
		t.Fatalf("unchanged settings: got another upstream (%v)", err)
	}
	b, releaseB, err := p.acquire(reweighted)
	if err != nil {
		t.Fatal(err)
	}
	if b == a || b.PoolKey() != a.PoolKey() || b.Key() == a.Key() {
		t.Fatal("a policy change must give a new policy over the same target set")
	}
	c, releaseC, err := p.acquire(moved)
	if err != nil {
		t.Fatal(err)
	}
	if c.PoolKey() == a.PoolKey() {
		t.Fatal("changed targets share the old target set")
	}
	if n := p.len(); n != 2 {
		t.Fatalf("%d target sets, want 2", n)
	}
	releaseA()
	releaseA() // idempotent
	releaseSame()
	if n := p.len(); n != 2 {
		t.Fatalf("%d target sets while the reweighted upstream is live, want 2", n)
	}
	// The derived policy is still served after the base policy's last
	// reference went, and a new acquire of the base policy derives again.
	again, releaseAgain, err := p.acquire(base)
	if err != nil || again.PoolKey() != b.PoolKey() {
		t.Fatalf("re-acquire of the base settings: %v", err)
	}
	releaseAgain()
	releaseB()
	releaseC()
	if n := p.len(); n != 0 {
		t.Fatalf("%d target sets after the last release, want 0", n)
	}
}
