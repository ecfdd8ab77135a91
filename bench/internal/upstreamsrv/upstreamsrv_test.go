package upstreamsrv

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestBody(t *testing.T) {
	tests := []struct {
		name string
		give int
		want int
	}{
		{name: "tiny", give: 0, want: 2},
		{name: "too small to pad", give: 10, want: 10},
		{name: "default", give: DefaultSize, want: DefaultSize},
		{name: "large", give: 4096, want: 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Body(tt.give)
			if len(b) != tt.want {
				t.Fatalf("len %d, want %d", len(b), tt.want)
			}
			if !json.Valid(b) {
				t.Fatalf("not JSON: %q", b)
			}
		})
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Server(Options{Size: 100, Latency: 20 * time.Millisecond})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	status, body, err := fasthttp.Get(nil, "http://"+ln.Addr().String()+"/anything")
	if err != nil {
		t.Fatal(err)
	}
	if status != 200 || len(body) != 100 || !json.Valid(body) {
		t.Fatalf("status %d, body %q", status, body)
	}
}
