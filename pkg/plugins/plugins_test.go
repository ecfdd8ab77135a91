package plugins

import (
	"errors"
	"io"
	"testing"

	"github.com/valyala/fasthttp"
)

type recorder struct {
	name     string
	verdict  Verdict
	log      *[]string
	closeErr error
}

func (r *recorder) Handle(*fasthttp.RequestCtx) Verdict {
	*r.log = append(*r.log, "handle "+r.name)
	return r.verdict
}

func (r *recorder) OnResponse(*fasthttp.RequestCtx) { *r.log = append(*r.log, "response "+r.name) }

func (r *recorder) Close() error {
	*r.log = append(*r.log, "close "+r.name)
	return r.closeErr
}

func TestChainStopsAndHooksRunForPluginsThatRan(t *testing.T) {
	var log []string
	boom := errors.New("boom")
	c := NewChain([]Plugin{
		&recorder{name: "a", log: &log},
		&recorder{name: "b", verdict: Done, log: &log, closeErr: boom},
		&recorder{name: "c", log: &log},
	}, []string{"a", "b", "c"})
	var ctx fasthttp.RequestCtx
	v, ran := c.Handle(&ctx)
	if v != Done || ran != 2 {
		t.Fatalf("verdict %v ran %d", v, ran)
	}
	c.OnResponse(&ctx, ran)
	if err := c.Close(); !errors.Is(err, boom) {
		t.Fatalf("close err = %v", err)
	}
	want := []string{"handle a", "handle b", "response a", "response b", "close a", "close b", "close c"}
	if len(log) != len(want) {
		t.Fatalf("log %v, want %v", log, want)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Fatalf("log %v, want %v", log, want)
		}
	}
}

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return nil }

func TestResourcesShareAndCloseOnLastRelease(t *testing.T) {
	r := NewResources()
	created := 0
	mk := func() (io.Closer, error) { created++; return &closer{}, nil }
	v1, rel1, err := r.Acquire("k", mk)
	if err != nil {
		t.Fatal(err)
	}
	v2, rel2, _ := r.Acquire("k", mk)
	if v1 != v2 || created != 1 || r.Len() != 1 {
		t.Fatalf("not shared: created %d", created)
	}
	_ = rel1()
	_ = rel1() // releasing twice counts once
	if v1.(*closer).closed != 0 {
		t.Fatal("closed while still referenced")
	}
	_ = rel2()
	if v1.(*closer).closed != 1 || r.Len() != 0 {
		t.Fatalf("closed %d times, %d left", v1.(*closer).closed, r.Len())
	}
	if _, _, err := r.Acquire("bad", func() (io.Closer, error) { return nil, errors.New("no") }); err == nil || r.Len() != 0 {
		t.Fatal("failed creation must not be stored")
	}
}

func TestRegistryPanicsOnDuplicateKind(t *testing.T) {
	r := NewRegistry()
	r.Register(kindOnly("x"))
	if _, ok := r.Lookup("x"); !ok || len(r.Kinds()) != 1 {
		t.Fatal("lookup")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate kind did not panic")
		}
	}()
	r.Register(kindOnly("x"))
}
