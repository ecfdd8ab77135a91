package router

import (
	"bytes"
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

// attackTable is the route table the path tests route through: the decision
// that matters is which route a normalised path reaches.
func attackTable(t testing.TB) *Table {
	t.Helper()
	tbl, err := New([]*Route{
		{Name: "root", PathPrefix: "/"},
		{Name: "admin", PathPrefix: "/v1/admin"},
		{Name: "users", PathPrefix: "/v1/users/"},
		{Name: "public", PathPrefix: "/v1/public/"},
		{Name: "login", Path: "/v1/auth/login"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		give      string
		wantPath  string
		wantRoute string
	}{
		{give: "/", wantPath: "/", wantRoute: "root"},
		{give: "/v1/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/admin/", wantPath: "/v1/admin/", wantRoute: "admin"},
		{give: "/v1/admin/users/42", wantPath: "/v1/admin/users/42", wantRoute: "admin"},
		{give: "/v1/admin/../admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "//v1/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/%61dmin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/%41dmin", wantPath: "/v1/Admin", wantRoute: "root"},
		{give: "/v1/ADMIN", wantPath: "/v1/ADMIN", wantRoute: "root"},
		{give: "/v1/admin%2f..", wantPath: "/v1/", wantRoute: "root"},
		{give: "/v1/admin%2F..%2Fusers", wantPath: "/v1/users", wantRoute: "users"},
		{give: "/v1/users%2F..%2Fadmin%2Fx", wantPath: "/v1/admin/x", wantRoute: "admin"},
		{give: "/v1/%2e%2e/admin", wantPath: "/admin", wantRoute: "root"},
		{give: "/v1/%2E%2E/v1/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/public/%2e%2e/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/public/.%2e/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/public/%2e./admin/", wantPath: "/v1/admin/", wantRoute: "admin"},
		{give: "/%2e%2e/%2e%2e/etc", wantPath: "/etc", wantRoute: "root"},
		{give: "/../x", wantPath: "/x", wantRoute: "root"},
		{give: "/../../../../v1/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/..", wantPath: "/", wantRoute: "root"},
		{give: "/.", wantPath: "/", wantRoute: "root"},
		{give: "/v1///admin//x/", wantPath: "/v1/admin/x/", wantRoute: "admin"},
		{give: "/v1/adminx", wantPath: "/v1/adminx", wantRoute: "root"},
		{give: "/v1/admin.json", wantPath: "/v1/admin.json", wantRoute: "root"},
		{give: "/v1/./admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/./v1/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/%2E/admin", wantPath: "/v1/admin", wantRoute: "admin"},
		{give: "/v1/admin/.", wantPath: "/v1/admin/", wantRoute: "admin"},
		{give: "/v1/admin/..", wantPath: "/v1/", wantRoute: "root"},
		{give: "/v1/admin/x/..", wantPath: "/v1/admin/", wantRoute: "admin"},
		{give: "/a/b/", wantPath: "/a/b/", wantRoute: "root"},
		{give: "/v1/public/..;/admin", wantPath: "/v1/public/..;/admin", wantRoute: "public"},
		{give: `/v1/public/..\admin`, wantPath: `/v1/public/..\admin`, wantRoute: "public"},
		{give: "/v1/public/..%5cadmin", wantPath: `/v1/public/..\admin`, wantRoute: "public"},
		{give: "/v1/admin/%252e%252e/", wantPath: "/v1/admin/%2e%2e/", wantRoute: "admin"},
		{give: "/v1/public/%252e%252e/admin", wantPath: "/v1/public/%2e%2e/admin", wantRoute: "public"},
		{give: "/v1/admin%3F.json", wantPath: "/v1/admin?.json", wantRoute: "root"},
		{give: "/v1/admin%23x", wantPath: "/v1/admin#x", wantRoute: "root"},
		{give: "/v1/admin%20", wantPath: "/v1/admin ", wantRoute: "root"},
		{give: "/v1/users/caf%C3%A9", wantPath: "/v1/users/café", wantRoute: "users"},
		{give: "/v1/users/café", wantPath: "/v1/users/café", wantRoute: "users"},
		{give: "/v1/users/a+b", wantPath: "/v1/users/a+b", wantRoute: "users"},
		{give: "/v1/auth/login", wantPath: "/v1/auth/login", wantRoute: "login"},
		{give: "/v1/auth//login", wantPath: "/v1/auth/login", wantRoute: "login"},
		{give: "/v1/auth/login/", wantPath: "/v1/auth/login/", wantRoute: "root"},
		{give: "/v1/auth/x/../login", wantPath: "/v1/auth/login", wantRoute: "login"},
		{give: "/...", wantPath: "/...", wantRoute: "root"},
		{give: "/v1/admin/.../x", wantPath: "/v1/admin/.../x", wantRoute: "admin"},
		{give: "/v1/.admin", wantPath: "/v1/.admin", wantRoute: "root"},
	}
	tbl := attackTable(t)
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := NormalizePath(nil, []byte(tt.give))
			if err != nil {
				t.Fatalf("NormalizePath(%q) error: %v", tt.give, err)
			}
			if string(got) != tt.wantPath {
				t.Errorf("NormalizePath(%q) = %q, want %q", tt.give, got, tt.wantPath)
			}
			res := tbl.Match([]byte("GET"), nil, got, nil)
			if res.Route == nil || res.Route.Name != tt.wantRoute {
				t.Errorf("Match(%q) = %+v, want route %q", got, res, tt.wantRoute)
			}
			wire := AppendEscapedPath(nil, got)
			again, err := NormalizePath(nil, wire)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("NormalizePath(AppendEscapedPath(%q) = %q) = %q, %v; want the same path", got, wire, again, err)
			}
			if want := referenceNormalize(tt.give); string(got) != want {
				t.Errorf("NormalizePath(%q) = %q, reference gives %q", tt.give, got, want)
			}
		})
	}
}

func TestNormalizePathRejects(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "empty", give: ""},
		{name: "relative", give: "v1/admin"},
		{name: "asterisk", give: "*"},
		{name: "absolute form", give: "http://example.com/v1/admin"},
		{name: "encoded nul", give: "/v1/admin%00"},
		{name: "encoded nul mid path", give: "/v1/admin%00/../users"},
		{name: "truncated escape", give: "/v1/admin%"},
		{name: "half escape", give: "/v1/admin%2"},
		{name: "invalid hex", give: "/v1/admin%zz"},
		{name: "invalid second hex", give: "/v1/admin%2g"},
		{name: "encoded newline", give: "/v1/admin%0a"},
		{name: "encoded carriage return", give: "/v1/admin%0D%0AX-Injected:%201"},
		{name: "encoded tab", give: "/v1/%09admin"},
		{name: "encoded del", give: "/v1/admin%7f"},
		{name: "raw control", give: "/v1/\x01admin"},
		{name: "raw nul", give: "/v1/admin\x00"},
		{name: "raw del", give: "/v1/admin\x7f"},
		{name: "too long", give: "/" + strings.Repeat("a", MaxPathLength)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := NormalizePath(dst, []byte(tt.give))
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("NormalizePath(%q) = %q, %v; want ErrBadPath", tt.give, got, err)
			}
			if string(got) != "keep" {
				t.Errorf("NormalizePath(%q) returned dst %q, want it unchanged", tt.give, got)
			}
		})
	}
}

func TestNormalizePathMaxLength(t *testing.T) {
	give := "/" + strings.Repeat("a", MaxPathLength-1)
	got, err := NormalizePath(nil, []byte(give))
	if err != nil || string(got) != give {
		t.Fatalf("NormalizePath of a %d-byte path = %d bytes, %v; want it unchanged", len(give), len(got), err)
	}
}

func TestNormalizePathAppends(t *testing.T) {
	got, err := NormalizePath([]byte("GET "), []byte("/v1//x/../admin/"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "GET /v1/admin/"; string(got) != want {
		t.Errorf("NormalizePath appended %q, want %q", got, want)
	}
}

func TestNormalizePathInPlace(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "/v1/admin%2F..%2Fusers", want: "/v1/users"},
		{give: "//v1//%61dmin/./x/", want: "/v1/admin/x/"},
		{give: "/%2e%2e/%2e%2e/etc", want: "/etc"},
		{give: "/v1/caf%C3%A9/%252e", want: "/v1/café/%2e"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			buf := []byte(tt.give)
			got, err := NormalizePath(buf[:0], buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("in-place NormalizePath(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestAppendEscapedPath(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "/", want: "/"},
		{give: "/v1/users/42", want: "/v1/users/42"},
		{give: "/a-b_c.d~e/!$&'()*+,=:@", want: "/a-b_c.d~e/!$&'()*+,=:@"},
		{give: "/a b", want: "/a%20b"},
		{give: "/100%", want: "/100%25"},
		{give: "/%2e%2e", want: "/%252e%252e"},
		{give: "/a?b#c", want: "/a%3Fb%23c"},
		{give: `/public/..;/admin`, want: "/public/..%3B/admin"},
		{give: `/a\b`, want: "/a%5Cb"},
		{give: "/café", want: "/caf%C3%A9"},
		{give: `/<>"^{|}[]` + "`", want: "/%3C%3E%22%5E%7B%7C%7D%5B%5D%60"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got := AppendEscapedPath([]byte("x"), []byte(tt.give))
			if string(got) != "x"+tt.want {
				t.Errorf("AppendEscapedPath(%q) = %q, want %q", tt.give, got[1:], tt.want)
			}
		})
	}
}

// referenceNormalize computes the normal form of raw with the standard
// library: url.PathUnescape to decode, path.Clean to resolve segments, and
// the trailing slash restored where NormalizePath keeps one. It returns "" for
// a path NormalizePath must reject.
func referenceNormalize(raw string) string {
	if raw == "" || raw[0] != '/' || len(raw) > MaxPathLength {
		return ""
	}
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return ""
	}
	for i := 0; i < len(dec); i++ {
		if dec[i] < 0x20 || dec[i] == 0x7f {
			return ""
		}
	}
	clean := path.Clean(dec)
	if clean != "/" && (strings.HasSuffix(dec, "/") || strings.HasSuffix(dec, "/.") || strings.HasSuffix(dec, "/..")) {
		clean += "/"
	}
	return clean
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/v1/admin/../admin", "//v1/admin", "/v1/%61dmin", "/v1/admin%2f..",
		"/v1/admin%2F..%2Fusers", "/v1/%2e%2e/admin", "/%2e%2e/%2e%2e/etc", "/v1/admin%00",
		"/v1/admin%", "/v1/admin%zz", "/v1///admin//x/", "/v1/./admin", "/a/b/..",
		"/v1/public/..;/admin", `/a\..\b`, "/caf%C3%A9/%252e", "/%", "/.%2e", "/a/%2F%2F/b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := NormalizePath(nil, raw)
		want := referenceNormalize(string(raw))
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("NormalizePath(%q) error %v is not ErrBadPath", raw, err)
			}
			if want != "" {
				t.Fatalf("NormalizePath(%q) rejected the path, reference gives %q", raw, want)
			}
			return
		}
		if string(got) != want {
			t.Fatalf("NormalizePath(%q) = %q, reference gives %q", raw, got, want)
		}
		if len(got) == 0 || got[0] != '/' {
			t.Fatalf("NormalizePath(%q) = %q, want a leading '/'", raw, got)
		}
		s := string(got)
		if strings.Contains(s, "//") || strings.Contains(s, "/./") || strings.Contains(s, "/../") ||
			strings.HasSuffix(s, "/.") || strings.HasSuffix(s, "/..") {
			t.Fatalf("NormalizePath(%q) = %q, still holds an empty or dot segment", raw, got)
		}
		if len(got) > len(raw) {
			t.Fatalf("NormalizePath(%q) = %q grew the path", raw, got)
		}
		buf := append([]byte(nil), raw...)
		if inPlace, err := NormalizePath(buf[:0], buf); err != nil || !bytes.Equal(inPlace, got) {
			t.Fatalf("in-place NormalizePath(%q) = %q, %v; want %q", raw, inPlace, err, got)
		}
		wire := AppendEscapedPath(nil, got)
		for _, c := range wire {
			if c != '%' && !pathSafe[c] {
				t.Fatalf("AppendEscapedPath(%q) = %q holds the raw byte %q", got, wire, c)
			}
		}
		if dec, err := url.PathUnescape(string(wire)); err != nil || dec != s {
			t.Fatalf("url.PathUnescape(AppendEscapedPath(%q) = %q) = %q, %v; want the path back", got, wire, dec, err)
		}
		if len(wire) > MaxPathLength {
			return
		}
		again, err := NormalizePath(nil, wire)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("NormalizePath(AppendEscapedPath(%q) = %q) = %q, %v; want the same path", got, wire, again, err)
		}
	})
}
