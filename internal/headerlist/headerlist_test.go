package headerlist

import "testing"

func TestNext(t *testing.T) {
	var got []string
	for v := []byte(" gzip ,\tbr;q=0.5,, identity\t"); len(v) > 0; {
		var e []byte
		e, v = Next(v)
		got = append(got, string(e))
	}
	want := []string{"gzip", "br;q=0.5", "", "identity"}
	if len(got) != len(want) {
		t.Fatalf("Next: %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Next: %q, want %q", got, want)
		}
	}
}

func TestHas(t *testing.T) {
	tests := []struct {
		values []string
		tok    string
		want   bool
	}{
		{[]string{"no-cache, No-Transform"}, "no-transform", true},
		{[]string{"max-age=0", "private"}, "private", true},
		{[]string{"Max-Age = 0"}, "max-age", true},
		{[]string{"no-transformed"}, "no-transform", false},
		{[]string{"Accept-Encoding,Origin"}, "origin", true},
		{[]string{""}, "origin", false},
		{nil, "origin", false},
	}
	for _, tt := range tests {
		var values [][]byte
		for _, v := range tt.values {
			values = append(values, []byte(v))
		}
		if got := Has(values, tt.tok); got != tt.want {
			t.Errorf("Has(%q, %q) = %v, want %v", tt.values, tt.tok, got, tt.want)
		}
	}
}

func TestEqualLower(t *testing.T) {
	if !EqualLower([]byte("GZip"), "gzip") || EqualLower([]byte("gzip"), "gzi") || EqualLower([]byte("gzip"), "gzipp") {
		t.Fatal("EqualLower")
	}
}

func TestNoAllocs(t *testing.T) {
	values := [][]byte{[]byte("Accept-Encoding, Origin"), []byte("no-cache, max-age=0")}
	if n := testing.AllocsPerRun(100, func() { _ = Has(values, "max-age") }); n != 0 {
		t.Fatalf("Has allocates %v times", n)
	}
}
