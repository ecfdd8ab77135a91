package requestid

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestAssign(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantKeep bool
	}{
		{name: "simple", give: "abc123", wantKeep: true},
		{name: "all allowed characters", give: "A-z_0.9:x", wantKeep: true},
		{name: "max length", give: strings.Repeat("a", 128), wantKeep: true},
		{name: "too long", give: strings.Repeat("a", 129)},
		{name: "empty", give: ""},
		{name: "space", give: "a b"},
		{name: "quote", give: `a"b`},
		{name: "newline", give: "a\nb"},
		{name: "non-ascii", give: "é"},
		{name: "slash", give: "a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Assign(nil, []byte(tt.give)))
			if tt.wantKeep {
				if got != tt.give {
					t.Fatalf("got %q, want %q kept", got, tt.give)
				}
				return
			}
			if !uuidRe.MatchString(got) {
				t.Fatalf("got %q, want a generated UUID", got)
			}
		})
	}
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := string(AppendUUID(nil))
		if seen[id] || !uuidRe.MatchString(id) {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

func build(t *testing.T, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(plugintest.Section(t, "request-id", src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Plugin)
}

func TestHandleSetsRequestAndResponse(t *testing.T) {
	tests := []struct {
		name       string
		giveConfig string
		giveHeader [2]string
		wantHeader string
		wantID     string
	}{
		{name: "default header", wantHeader: "X-Request-ID", wantID: "assigned"},
		{name: "custom header keeps a valid client id", giveConfig: "{header: X-Trace-ID}",
			giveHeader: [2]string{"X-Trace-ID", "trace-1"}, wantHeader: "X-Trace-ID", wantID: "trace-1"},
		{name: "custom header replaces an invalid client id", giveConfig: "{header: X-Trace-ID}",
			giveHeader: [2]string{"X-Trace-ID", "bad id"}, wantHeader: "X-Trace-ID", wantID: "assigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, tt.giveConfig)
			var ctx fasthttp.RequestCtx
			if tt.giveHeader[0] != "" {
				ctx.Request.Header.Set(tt.giveHeader[0], tt.giveHeader[1])
			}
			st := reqctx.Acquire(&ctx)
			st.RequestID = append(st.RequestID[:0], "assigned"...)
			p.Handle(&ctx)
			// The upstream's response replaces ctx.Response.
			ctx.Response.Reset()
			p.OnResponse(&ctx)
			if got := string(ctx.Request.Header.Peek(tt.wantHeader)); got != tt.wantID {
				t.Fatalf("upstream header = %q, want %q", got, tt.wantID)
			}
			if got := string(ctx.Response.Header.Peek(tt.wantHeader)); got != tt.wantID {
				t.Fatalf("response header = %q, want %q", got, tt.wantID)
			}
			if string(st.RequestID) != tt.wantID {
				t.Fatalf("state id = %q", st.RequestID)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	_, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].request-id", "header: \"X Bad\"\n"), nil)
	if err == nil || err.Error() != `gateway.yaml:1: routes[0].plugins[0].request-id.header: invalid header name "X Bad"` {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkAssignGenerate(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for i := 0; i < b.N; i++ {
		buf = Assign(buf, nil)
	}
}
