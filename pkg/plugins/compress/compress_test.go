package compress

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/valyala/fasthttp"
)

func mustBuild(t testing.TB, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].compress", src), &plugins.Env{})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Plugin)
}

// jsonBody returns a JSON array of about n bytes.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strings.Repeat("7", i%5+1) + `,"name":"user","email":"user@example.com","active":true}`)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{name: "typo", give: "min_sise: 1KiB", wantErr: `gateway.yaml:1: routes[0].plugins[0].compress.min_sise: unknown field "min_sise" (did you mean "min_size"?)`},
		{name: "bad size", give: "min_size: lots", wantErr: "compress.min_size: expected a size such as 512, 8KiB or 10MiB"},
		{name: "bad type", give: "types:\n  - application/json\n  - json", wantErr: `gateway.yaml:3: routes[0].plugins[0].compress.types[1]: expected a media type such as application/json`},
		{name: "params in type", give: "types: [\"text/html; charset=utf-8\"]", wantErr: "compress.types[0]: expected a media type"},
		{name: "star type", give: "types: [\"*/json\"]", wantErr: "compress.types[0]: expected a media type"},
		{name: "empty types", give: "types: []", wantErr: "compress.types: at least one media type is required"},
		{name: "level", give: "level: defualt", wantErr: `compress.level: expected fastest, default or best, got "defualt" (did you mean "default"?)`},
		{name: "encoding", give: "encodings: [br, gzp]", wantErr: `compress.encodings[1]: unknown encoding "gzp" (did you mean "gzip"?): expected br or gzip`},
		{name: "deflate", give: "encodings: [deflate]", wantErr: `unknown encoding "deflate"`},
		{name: "twice", give: "encodings: [gzip, gzip]", wantErr: "compress.encodings[1]: gzip is listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].compress", tt.give), &plugins.Env{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name      string
		encodings string
		give      string
		want      coding
	}{
		{name: "none", give: "", want: none},
		{name: "gzip only", give: "gzip", want: gzip},
		{name: "x-gzip", give: "x-gzip", want: gzip},
		{name: "br only", give: "br", want: brotli},
		{name: "browser", give: "gzip, deflate, br, zstd", want: brotli},
		{name: "tie prefers br", give: "gzip;q=0.8, br;q=0.8", want: brotli},
		{name: "tie prefers configured order", encodings: "[gzip, br]", give: "br, gzip", want: gzip},
		{name: "higher q wins", give: "br;q=0.5, gzip;q=0.9", want: gzip},
		{name: "q=0 refuses", give: "br;q=0, gzip", want: gzip},
		{name: "all refused", give: "br;q=0, gzip;q=0", want: none},
		{name: "upper case", give: "GZIP;Q=1.0", want: gzip},
		{name: "spaces", give: " br ; q=0.2 ,  gzip ; q=0.1", want: brotli},
		{name: "spaces around = are malformed", give: "br;q=0.2, gzip;q = 0.1", want: gzip},
		{name: "star", give: "*", want: brotli},
		{name: "star refused", give: "*;q=0", want: none},
		{name: "star with refused br", give: "br;q=0, *;q=0.5", want: gzip},
		{name: "identity preferred", give: "identity, gzip;q=0.5", want: none},
		{name: "identity lower", give: "identity;q=0.1, gzip", want: gzip},
		{name: "identity only", give: "identity", want: none},
		{name: "unknown only", give: "deflate, zstd", want: none},
		{name: "malformed q", give: "br;q=high, gzip;q=0.3", want: gzip},
		{name: "q above 1", give: "br;q=1.5, gzip;q=0.3", want: gzip},
		{name: "three decimals", give: "br;q=0.001, gzip;q=0.002", want: gzip},
		{name: "too many decimals", give: "br;q=0.0001, gzip;q=0.002", want: gzip},
		{name: "not offered", encodings: "[gzip]", give: "br", want: none},
		{name: "empty elements", give: ",,gzip,,", want: gzip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := ""
			if tt.encodings != "" {
				src = "encodings: " + tt.encodings
			}
			if got := mustBuild(t, src).choose([]byte(tt.give)); got != tt.want {
				t.Fatalf("choose(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestCompressible(t *testing.T) {
	p := mustBuild(t, "types: [application/json, text/*]")
	tests := []struct {
		give string
		want bool
	}{
		{"application/json", true},
		{"Application/JSON; charset=utf-8", true},
		{"text/html", true},
		{"text/csv;header=present", true},
		{"text/", false},
		{"application/xml", false},
		{"image/png", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := p.compressible([]byte(tt.give)); got != tt.want {
			t.Errorf("compressible(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if !mustBuild(t, "types: [\"*/*\"]").compressible([]byte("image/png")) {
		t.Error("*/* does not match")
	}
	if !mustBuild(t, "").compressible([]byte("application/problem+json")) {
		t.Error("default types do not include application/problem+json")
	}
}

// exchange runs the plugin on a response and returns the context.
type exchange struct {
	method, acceptEncoding string
	status                 int
	contentType            string
	body                   []byte
	headers                map[string]string
}

func (e exchange) run(t testing.TB, p *Plugin) *fasthttp.RequestCtx {
	t.Helper()
	ctx := &fasthttp.RequestCtx{}
	// As the gateway's server does: no Content-Type is invented.
	ctx.Response.Header.SetNoDefaultContentType(true)
	if e.method != "" {
		ctx.Request.Header.SetMethod(e.method)
	}
	if e.acceptEncoding != "" {
		ctx.Request.Header.Set("Accept-Encoding", e.acceptEncoding)
	}
	if e.status != 0 {
		ctx.Response.SetStatusCode(e.status)
	}
	if e.contentType != "" {
		ctx.Response.Header.SetContentType(e.contentType)
	}
	for k, v := range e.headers {
		ctx.Response.Header.Add(k, v)
	}
	ctx.Response.SetBody(e.body)
	if p.Handle(ctx) != plugins.Next {
		t.Fatal("Handle did not pass the request on")
	}
	p.OnResponse(ctx)
	return ctx
}

func TestCompresses(t *testing.T) {
	body := jsonBody(8 << 10)
	for _, tt := range []struct{ giveAccept, want string }{
		{"gzip", "gzip"},
		{"br", "br"},
		{"gzip;q=1, br;q=0.9", "gzip"},
		{"gzip, br", "br"},
	} {
		t.Run(tt.giveAccept, func(t *testing.T) {
			ctx := exchange{acceptEncoding: tt.giveAccept, contentType: "application/json", body: body,
				headers: map[string]string{"ETag": `"v1"`, "Accept-Ranges": "bytes", "Vary": "Origin"}}.run(t, mustBuild(t, ""))
			h := &ctx.Response.Header
			if got := string(h.ContentEncoding()); got != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", got, tt.want)
			}
			got := ctx.Response.Body()
			if len(got) >= len(body) || h.ContentLength() != len(got) {
				t.Fatalf("body %d bytes (Content-Length %d) from %d", len(got), h.ContentLength(), len(body))
			}
			if !bytes.Equal(plugintest.Decompress(t, tt.want, got), body) {
				t.Fatal("decoded body differs from the original")
			}
			if vary := h.PeekAll("Vary"); len(vary) != 2 || !hasValue(vary, "Origin") || !hasValue(vary, "Accept-Encoding") {
				t.Errorf("Vary %q, want Origin and Accept-Encoding", vary)
			}
			if etag := string(h.Peek("ETag")); etag != `W/"v1"` {
				t.Errorf("ETag %q, want weakened", etag)
			}
			if h.Peek("Accept-Ranges") != nil {
				t.Error("Accept-Ranges kept")
			}
		})
	}
}

// Responses that must pass untouched, with or without Vary.
func TestDoesNotCompress(t *testing.T) {
	body := jsonBody(4 << 10)
	p := mustBuild(t, "min_size: 1KiB")
	tests := []struct {
		name     string
		give     exchange
		wantVary bool
	}{
		{name: "below min_size", give: exchange{contentType: "application/json", body: body[:1000]}, wantVary: true},
		{name: "no accept-encoding", give: exchange{contentType: "application/json", body: body}, wantVary: true},
		{name: "refused codings", give: exchange{acceptEncoding: "gzip;q=0, br;q=0", contentType: "application/json", body: body}, wantVary: true},
		{name: "HEAD", give: exchange{method: "HEAD", contentType: "application/json"}, wantVary: true},
		{name: "already encoded", give: exchange{contentType: "application/json", body: body, headers: map[string]string{"Content-Encoding": "zstd"}}},
		{name: "no-transform", give: exchange{contentType: "application/json", body: body, headers: map[string]string{"Cache-Control": "private, No-Transform"}}},
		{name: "206", give: exchange{status: 206, contentType: "application/json", body: body}},
		{name: "content-range", give: exchange{contentType: "application/json", body: body, headers: map[string]string{"Content-Range": "bytes 0-9/100"}}},
		{name: "204", give: exchange{status: 204, contentType: "application/json"}},
		{name: "304", give: exchange{status: 304, contentType: "application/json"}},
		{name: "101", give: exchange{status: 101}},
		{name: "other type", give: exchange{contentType: "image/png", body: body}},
		{name: "no type", give: exchange{body: body}},
		{name: "incompressible", give: exchange{contentType: "application/json", body: random(4 << 10)}, wantVary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give.acceptEncoding == "" {
				tt.give.acceptEncoding = "br, gzip"
				if tt.name == "no accept-encoding" {
					tt.give.acceptEncoding = ""
				}
			}
			ctx := tt.give.run(t, p)
			h := &ctx.Response.Header
			if enc := string(h.ContentEncoding()); enc != "" && enc != tt.give.headers["Content-Encoding"] {
				t.Fatalf("Content-Encoding %q", enc)
			}
			if !bytes.Equal(ctx.Response.Body(), tt.give.body) {
				t.Fatal("body changed")
			}
			if got := string(h.Peek("Vary")) == "Accept-Encoding"; got != tt.wantVary {
				t.Fatalf("Vary %q, want Accept-Encoding: %v", h.Peek("Vary"), tt.wantVary)
			}
		})
	}
}

func hasValue(vs [][]byte, v string) bool {
	for _, x := range vs {
		if string(x) == v {
			return true
		}
	}
	return false
}

func random(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// A Vary that already names Accept-Encoding (or *) is left alone.
func TestVaryNotRepeated(t *testing.T) {
	p := mustBuild(t, "")
	for _, v := range []string{"accept-encoding", "Origin, Accept-Encoding", "*"} {
		ctx := exchange{acceptEncoding: "gzip", contentType: "text/plain", body: jsonBody(2 << 10), headers: map[string]string{"Vary": v}}.run(t, p)
		if got := ctx.Response.Header.PeekAll("Vary"); len(got) != 1 || string(got[0]) != v {
			t.Errorf("Vary %q became %q", v, got)
		}
	}
}

// A weak ETag stays as it is; the min_size boundary is inclusive.
func TestWeakETagAndBoundary(t *testing.T) {
	p := mustBuild(t, "min_size: 2KiB")
	body := jsonBody(4 << 10)[:2048]
	ctx := exchange{acceptEncoding: "gzip", contentType: "application/json", body: body, headers: map[string]string{"ETag": `W/"x"`}}.run(t, p)
	if string(ctx.Response.Header.ContentEncoding()) != "gzip" {
		t.Fatal("a body of exactly min_size is not compressed")
	}
	if got := string(ctx.Response.Header.Peek("ETag")); got != `W/"x"` {
		t.Fatalf("ETag %q", got)
	}
}

// A streamed body (the gateway streams large upstream bodies) is passed
// through as it is.
func TestStreamedBodyPassesThrough(t *testing.T) {
	p := mustBuild(t, "")
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.Set("Accept-Encoding", "gzip")
	ctx.Response.Header.SetContentType("application/json")
	body := jsonBody(100 << 10)
	ctx.Response.SetBodyStream(bytes.NewReader(body), len(body))
	p.OnResponse(ctx)
	if len(ctx.Response.Header.ContentEncoding()) != 0 || !ctx.Response.IsBodyStream() {
		t.Fatal("streamed body touched")
	}
	if string(ctx.Response.Header.Peek("Vary")) != "Accept-Encoding" {
		t.Fatal("no Vary on a compressible streamed response")
	}
}

// Every level produces a body that decodes to the original.
func TestLevels(t *testing.T) {
	body := jsonBody(16 << 10)
	for _, level := range []string{"fastest", "default", "best"} {
		for _, enc := range []string{"gzip", "br"} {
			ctx := exchange{acceptEncoding: enc, contentType: "application/json", body: body}.run(t, mustBuild(t, "level: "+level))
			if !bytes.Equal(plugintest.Decompress(t, enc, ctx.Response.Body()), body) {
				t.Fatalf("%s %s: decoded body differs", level, enc)
			}
		}
	}
}
