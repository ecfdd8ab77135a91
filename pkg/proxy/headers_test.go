package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseTrustedProxies(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.1", " 2001:db8::/32 ", "::1", "::ffff:172.16.0.0/108"})
	if err != nil {
		t.Fatal(err)
	}
	if tp.Len() != 5 {
		t.Fatalf("Len = %d, want 5", tp.Len())
	}
	tests := []struct {
		give string
		want bool
	}{
		{give: "10.1.2.3", want: true},
		{give: "11.0.0.1", want: false},
		{give: "192.0.2.1", want: true},
		{give: "192.0.2.2", want: false},
		{give: "2001:db8:1::5", want: true},
		{give: "2001:db9::1", want: false},
		{give: "::1", want: true},
		{give: "::2", want: false},
		{give: "::ffff:10.9.9.9", want: true}, // mapped peers count as IPv4
		{give: "172.16.5.5", want: true},      // mapped prefix counts as IPv4
		{give: "172.32.0.1", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := tp.Contains(net.ParseIP(tt.give)); got != tt.want {
				t.Errorf("Contains(%s) = %v, want %v", tt.give, got, tt.want)
			}
			if got := tp.ContainsAddr(netip.MustParseAddr(tt.give)); got != tt.want {
				t.Errorf("ContainsAddr(%s) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxiesErrors(t *testing.T) {
	tests := []struct {
		give    []string
		wantErr string
	}{
		{give: []string{"10.0.0.0/8", "10.0.0.0/33"}, wantErr: `"10.0.0.0/33"`},
		{give: []string{"localhost"}, wantErr: `"localhost"`},
		{give: []string{"10.0.0"}, wantErr: `"10.0.0"`},
		{give: []string{""}, wantErr: `""`},
		{give: []string{"fe80::1%eth0"}, wantErr: `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, ","), func(t *testing.T) {
			_, err := ParseTrustedProxies(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestTrustedProxiesNilTrustsNobody(t *testing.T) {
	var tp *TrustedProxies
	if tp.Contains(net.ParseIP("127.0.0.1")) || tp.ContainsAddr(netip.MustParseAddr("::1")) || tp.Len() != 0 {
		t.Fatal("nil TrustedProxies trusts someone")
	}
	empty, err := ParseTrustedProxies(nil)
	if err != nil || empty.Contains(net.ParseIP("127.0.0.1")) {
		t.Fatalf("empty set: err %v", err)
	}
	if (&TrustedProxies{}).Contains(nil) {
		t.Fatal("nil IP is trusted")
	}
}

func TestPrepareRequestRemovesHopByHopHeaders(t *testing.T) {
	req := rawRequest(t, "POST /x HTTP/1.1\r\n"+
		"Host: api.example\r\n"+
		"Connection: keep-alive, X-Hop-One\r\n"+
		"Connection: x-hop-two\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Proxy-Authenticate: Basic\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"TE: trailers\r\n"+
		"Upgrade: websocket\r\n"+
		"X-Hop-One: 1\r\n"+
		"X-Hop-Two: 2\r\n"+
		"Authorization: Bearer abc\r\n"+
		"Accept: application/json\r\n"+
		"Content-Length: 5\r\n"+
		"\r\n"+
		"hello")
	PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)

	for _, name := range []string{
		"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"TE", "Trailer", "Transfer-Encoding", "Upgrade", "X-Hop-One", "X-Hop-Two",
	} {
		if v := req.Header.Peek(name); v != nil {
			t.Errorf("%s = %q survived", name, v)
		}
	}
	for name, want := range map[string]string{
		"Authorization": "Bearer abc",
		"Accept":        "application/json",
		"Host":          "api.example",
	} {
		if got := string(req.Header.Peek(name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	wire := req.String()
	if strings.Contains(strings.ToLower(wire), "connection:") {
		t.Errorf("forwarded request still has a Connection header:\n%s", wire)
	}
	if !strings.HasSuffix(wire, "\r\n\r\nhello") || !strings.Contains(wire, "Content-Length: 5\r\n") {
		t.Errorf("body framing changed:\n%s", wire)
	}
}

func TestPrepareRequestConnectionCloseIsNotForwarded(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	} {
		req := rawRequest(t, raw)
		PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)
		if req.Header.ConnectionClose() {
			t.Errorf("%q: connection close survived", raw)
		}
	}
}

func TestPrepareRequestKeepsFramingHeadersNamedInConnection(t *testing.T) {
	req := rawRequest(t, "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length, Host, Transfer-Encoding\r\n"+
		"Content-Length: 3\r\n\r\nabc")
	PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)
	if req.Header.ContentLength() != 3 || string(req.Header.Host()) != "a" || string(req.Body()) != "abc" {
		t.Fatalf("framing headers removed: %s", req.String())
	}
}

func TestPrepareRequestStripsIdentityHeaders(t *testing.T) {
	ids := NewIdentityHeaders([]string{"X-Auth-Subject", "X-TENANT"})
	tests := []struct {
		give      string
		wantStrip bool
	}{
		{give: "X-User-ID", wantStrip: true},
		{give: "x-user-role", wantStrip: true},
		{give: "X-USER-ANYTHING", wantStrip: true},
		{give: "X_User_ID", wantStrip: true},
		{give: "x_user_role", wantStrip: true},
		{give: "x-user_email", wantStrip: true},
		{give: "X_USER-Id", wantStrip: true},
		{give: "X-Auth-Subject", wantStrip: true},
		{give: "x_auth_subject", wantStrip: true},
		{give: "x-tenant", wantStrip: true},
		{give: "X_Tenant", wantStrip: true},
		{give: "X-Username", wantStrip: false},
		{give: "X-Userdata", wantStrip: false},
		{give: "X_Username", wantStrip: false},
		{give: "X-Tenants", wantStrip: false},
		{give: "X.Tenant", wantStrip: false},
		{give: "X-Tenant-Id", wantStrip: false},
		{give: "Tenant", wantStrip: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			req := rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\n"+tt.give+": v\r\nX-Other: kept\r\n\r\n")
			PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, ids, nil)
			wire := req.String()
			if got := strings.Contains(strings.ToLower(wire), "\r\n"+strings.ToLower(tt.give)+":"); got == tt.wantStrip {
				t.Errorf("%s stripped = %v, want %v:\n%s", tt.give, !got, tt.wantStrip, wire)
			}
			if !strings.Contains(wire, "X-Other: kept\r\n") {
				t.Errorf("X-Other removed:\n%s", wire)
			}
		})
	}
}

func TestPrepareRequestStripsEveryCopyOfAnIdentityHeader(t *testing.T) {
	req := rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\n"+
		"X-User-ID: 42\r\nX_User_ID: 43\r\nx-user_id: 44\r\nX-User-Id: 45\r\n\r\n")
	PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)
	if wire := req.String(); strings.Contains(strings.ToLower(wire), "user") {
		t.Fatalf("a copy survived:\n%s", wire)
	}
}

func TestPrepareRequestForwardingHeadersByFoldedName(t *testing.T) {
	tests := []struct {
		name        string
		givePeer    string
		give        string
		wantPresent bool
	}{
		{name: "untrusted underscore xff", givePeer: "203.0.113.7", give: "X_Forwarded_For: 1.2.3.4", wantPresent: false},
		{name: "untrusted underscore real ip", givePeer: "203.0.113.7", give: "x_real_ip: 1.2.3.4", wantPresent: false},
		{name: "untrusted forwarded", givePeer: "203.0.113.7", give: "Forwarded: for=1.2.3.4", wantPresent: false},
		{name: "trusted underscore xff", givePeer: "10.0.0.2", give: "X_Forwarded_For: 1.2.3.4", wantPresent: false},
		{name: "trusted underscore proto", givePeer: "10.0.0.2", give: "X-Forwarded_Proto: https", wantPresent: false},
		{name: "trusted real ip", givePeer: "10.0.0.2", give: "X-Real-IP: 1.2.3.4", wantPresent: true},
		{name: "trusted forwarded", givePeer: "10.0.0.2", give: "Forwarded: for=1.2.3.4", wantPresent: true},
	}
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\n"+tt.give+"\r\n\r\n")
			PrepareRequest(req, net.ParseIP(tt.givePeer), false, tp, nil, nil)
			name, _, _ := strings.Cut(tt.give, ":")
			got := strings.Contains(strings.ToLower(req.String()), "\r\n"+strings.ToLower(name)+":")
			if got != tt.wantPresent {
				t.Errorf("%s present = %v, want %v:\n%s", name, got, tt.wantPresent, req.String())
			}
		})
	}
}

func TestDropUnderscoreHeaders(t *testing.T) {
	tests := []struct {
		name string
		give func(t *testing.T) *fasthttp.Request
	}{
		{name: "from the wire", give: func(t *testing.T) *fasthttp.Request {
			return rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\nX_Api_Version: 1\r\nx_api_version: 2\r\n"+
				"Accept_Language: de\r\nX-Api-Version: 3\r\nAccept: */*\r\n\r\n")
		}},
		{name: "built in code", give: func(t *testing.T) *fasthttp.Request {
			var req fasthttp.Request
			req.SetRequestURI("/")
			req.Header.SetHost("a")
			req.Header.Set("X_Api_Version", "1")
			req.Header.Set("Accept_Language", "de")
			req.Header.Set("X-Api-Version", "3")
			req.Header.Set("Accept", "*/*")
			return &req
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.give(t)
			DropUnderscoreHeaders(req)
			wire := req.String()
			if strings.Contains(wire, "_") {
				t.Errorf("a header with '_' survived:\n%s", wire)
			}
			if !strings.Contains(wire, "X-Api-Version: 3\r\n") || !strings.Contains(wire, "Accept: */*\r\n") {
				t.Errorf("a header without '_' was removed:\n%s", wire)
			}
		})
	}
}

func TestNewIdentityHeaders(t *testing.T) {
	ids := NewIdentityHeaders([]string{"X-Tenant", "x_tenant", "X-User-Email", "Client_Cert", ""})
	want := []string{"client-cert", "x-tenant"}
	if got := ids.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	var none *IdentityHeaders
	if !none.Contains([]byte("X_USER_ID")) || none.Contains([]byte("X-Tenant")) || none.Names() != nil {
		t.Fatal("a nil set holds exactly the X-User- prefix")
	}
}

func TestPrepareRequestDropsTrailers(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{
			name: "announced",
			give: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-User-Role, X-Checksum\r\n\r\n" +
				"3\r\nabc\r\n0\r\nX-User-Role: admin\r\nX-Checksum: 1\r\n\r\n",
		},
		{
			name: "connection names trailer",
			give: "POST / HTTP/1.1\r\nHost: a\r\nConnection: Trailer\r\nTransfer-Encoding: chunked\r\nTrailer: X-User-Role\r\n\r\n" +
				"3\r\nabc\r\n0\r\nX-User-Role: admin\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := rawRequest(t, tt.give)
			PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)
			wire := req.String()
			if strings.Contains(wire, "X-User-Role") || strings.Contains(wire, "Trailer") || strings.Contains(wire, "X-Checksum") {
				t.Fatalf("trailer survived:\n%q", wire)
			}
			if string(req.Body()) != "abc" {
				t.Fatalf("body = %q", req.Body())
			}
		})
	}
}

func TestPrepareRequestForwardingHeaders(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		givePeer   string
		giveTLS    bool
		giveTP     *TrustedProxies
		giveHeader string
		wantXFF    string
		wantXFP    string
		wantXFH    string
		wantClient string
	}{
		{
			name:     "untrusted replaces spoofed values",
			givePeer: "203.0.113.7", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n",
			wantXFF:    "203.0.113.7", wantXFP: "http", wantXFH: "api.example", wantClient: "203.0.113.7",
		},
		{
			name:     "untrusted tls",
			givePeer: "203.0.113.7", giveTLS: true, giveTP: trusted,
			giveHeader: "X-Forwarded-Proto: http\r\n",
			wantXFF:    "203.0.113.7", wantXFP: "https", wantXFH: "api.example", wantClient: "203.0.113.7",
		},
		{
			name:     "untrusted ipv6",
			givePeer: "2001:db8::7", giveTP: trusted,
			giveHeader: "X-Forwarded-For: ::1\r\n",
			wantXFF:    "2001:db8::7", wantXFP: "http", wantXFH: "api.example", wantClient: "2001:db8::7",
		},
		{
			name:     "nil trusted set",
			givePeer: "10.0.0.2", giveTP: nil,
			giveHeader: "X-Forwarded-For: 198.51.100.9\r\n",
			wantXFF:    "10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "10.0.0.2",
		},
		{
			name:     "untrusted multiple xff headers",
			givePeer: "203.0.113.7", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n",
			wantXFF:    "203.0.113.7", wantXFP: "http", wantXFH: "api.example", wantClient: "203.0.113.7",
		},
		{
			name:     "trusted appends and keeps proto and host",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 198.51.100.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: www.example\r\n",
			wantXFF:    "198.51.100.9, 10.0.0.2", wantXFP: "https", wantXFH: "www.example", wantClient: "198.51.100.9",
		},
		{
			name:     "trusted without client values",
			givePeer: "10.0.0.2", giveTLS: true, giveTP: trusted,
			wantXFF: "10.0.0.2", wantXFP: "https", wantXFH: "api.example", wantClient: "10.0.0.2",
		},
		{
			name:     "trusted multiple xff headers",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 10.0.0.5\r\n",
			wantXFF:    "1.1.1.1, 2.2.2.2, 10.0.0.5, 10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "2.2.2.2",
		},
		{
			name:     "trusted spoofed chain",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 10.9.9.9, 6.6.6.6, 198.51.100.9\r\n",
			wantXFF:    "10.9.9.9, 6.6.6.6, 198.51.100.9, 10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "198.51.100.9",
		},
		{
			name:     "trusted all entries trusted",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 10.1.1.1, 10.2.2.2\r\n",
			wantXFF:    "10.1.1.1, 10.2.2.2, 10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "10.1.1.1",
		},
		{
			name:     "trusted garbage entry stops the walk",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 198.51.100.9, garbage, 10.0.0.5\r\n",
			wantXFF:    "198.51.100.9, garbage, 10.0.0.5, 10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "10.0.0.5",
		},
		{
			name:     "trusted ipv6 peer and entries with ports",
			givePeer: "fd00::2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: [2001:db8::1]:4711,198.51.100.9:80\r\n",
			wantXFF:    "[2001:db8::1]:4711,198.51.100.9:80, fd00::2", wantXFP: "http", wantXFH: "api.example", wantClient: "198.51.100.9",
		},
		{
			name:     "trusted ipv6 client",
			givePeer: "fd00::2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: 2001:DB8::1\r\n",
			wantXFF:    "2001:DB8::1, fd00::2", wantXFP: "http", wantXFH: "api.example", wantClient: "2001:db8::1",
		},
		{
			name:     "trusted mapped peer",
			givePeer: "::ffff:10.0.0.2", giveTP: trusted,
			giveHeader: "X-Forwarded-For: ::ffff:198.51.100.9\r\n",
			wantXFF:    "::ffff:198.51.100.9, 10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "198.51.100.9",
		},
		{
			name:     "untrusted client names xff in connection",
			givePeer: "203.0.113.7", giveTP: trusted,
			giveHeader: "Connection: X-Forwarded-For, X-Forwarded-Proto\r\nX-Forwarded-For: 1.2.3.4\r\n",
			wantXFF:    "203.0.113.7", wantXFP: "http", wantXFH: "api.example", wantClient: "203.0.113.7",
		},
		{
			name:     "trusted client names xff in connection",
			givePeer: "10.0.0.2", giveTP: trusted,
			giveHeader: "Connection: X-Forwarded-For\r\nX-Forwarded-For: 198.51.100.9\r\n",
			wantXFF:    "10.0.0.2", wantXFP: "http", wantXFH: "api.example", wantClient: "10.0.0.2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := rawRequest(t, "GET / HTTP/1.1\r\nHost: api.example\r\n"+tt.giveHeader+"\r\n")
			dst := []byte("prefix:")
			got := PrepareRequest(req, net.ParseIP(tt.givePeer), tt.giveTLS, tt.giveTP, nil, dst)
			if client, ok := strings.CutPrefix(string(got), "prefix:"); !ok || client != tt.wantClient {
				t.Errorf("client IP = %q, want prefix:%s", got, tt.wantClient)
			}
			if xff := req.Header.PeekAll("X-Forwarded-For"); len(xff) != 1 || string(xff[0]) != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want [%q]", xff, tt.wantXFF)
			}
			if got := string(req.Header.Peek("X-Forwarded-Proto")); got != tt.wantXFP {
				t.Errorf("X-Forwarded-Proto = %q, want %q", got, tt.wantXFP)
			}
			if got := string(req.Header.Peek("X-Forwarded-Host")); got != tt.wantXFH {
				t.Errorf("X-Forwarded-Host = %q, want %q", got, tt.wantXFH)
			}
		})
	}
}

func TestPrepareRequestOtherForwardingHeaders(t *testing.T) {
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	raw := "GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n" +
		"X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /api\r\n\r\n"
	names := []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix"}
	tests := []struct {
		name     string
		givePeer string
		wantKept bool
	}{
		{name: "untrusted", givePeer: "203.0.113.7", wantKept: false},
		{name: "trusted", givePeer: "10.0.0.2", wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := rawRequest(t, raw)
			PrepareRequest(req, net.ParseIP(tt.givePeer), false, trusted, nil, nil)
			for _, name := range names {
				if kept := req.Header.Peek(name) != nil; kept != tt.wantKept {
					t.Errorf("%s kept = %v, want %v", name, kept, tt.wantKept)
				}
			}
		})
	}
}

func TestPrepareRequestWithoutRawHeaders(t *testing.T) {
	// A request built in code has no raw header block.
	var req fasthttp.Request
	req.SetRequestURI("/x")
	req.Header.SetHost("a")
	req.Header.Set("X-User-Id", "1")
	req.Header.Set("Keep-Alive", "timeout=1")
	req.Header.Set("X-Forwarded-Port", "1")
	req.Header.Set("X-Strip", "1")
	req.Header.Set("Accept", "*/*")
	got := PrepareRequest(&req, net.ParseIP("203.0.113.7"), false, nil, NewIdentityHeaders([]string{"x-strip"}), nil)
	if string(got) != "203.0.113.7" {
		t.Errorf("client IP = %q", got)
	}
	for _, name := range []string{"X-User-Id", "Keep-Alive", "X-Forwarded-Port", "X-Strip"} {
		if v := req.Header.Peek(name); v != nil {
			t.Errorf("%s survived", name)
		}
	}
	if string(req.Header.Peek("Accept")) != "*/*" {
		t.Error("Accept removed")
	}
}

func TestCleanResponse(t *testing.T) {
	tests := []struct {
		name     string
		giveResp string
	}{
		{
			name: "connection close and named headers",
			giveResp: "HTTP/1.1 200 OK\r\nConnection: close, X-Internal\r\nX-Internal: secret\r\n" +
				"Keep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
		},
		{
			name: "keep-alive with named headers",
			giveResp: "HTTP/1.1 200 OK\r\nConnection: keep-alive, x-internal\r\nX-Internal: secret\r\n" +
				"Proxy-Authenticate: Basic\r\nUpgrade: h2c\r\nTE: trailers\r\nProxy-Connection: close\r\nContent-Length: 2\r\n\r\nok",
		},
		{
			name: "chunked",
			giveResp: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: Content-Length, X-Internal\r\nX-Internal: s\r\n\r\n" +
				"2\r\nok\r\n0\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp fasthttp.Response
			if err := resp.Read(newReader(tt.giveResp)); err != nil {
				t.Fatal(err)
			}
			resp.Header.Set("X-Kept", "yes")
			CleanResponse(&resp)
			for _, name := range []string{
				"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "TE", "Upgrade", "Transfer-Encoding", "X-Internal",
			} {
				if v := resp.Header.Peek(name); v != nil {
					t.Errorf("%s = %q survived", name, v)
				}
			}
			if resp.ConnectionClose() {
				t.Error("upstream Connection: close would close the client connection")
			}
			if string(resp.Header.Peek("X-Kept")) != "yes" {
				t.Error("X-Kept removed")
			}
			wire := resp.String()
			if !strings.HasSuffix(wire, "\r\n\r\nok") || !strings.Contains(wire, "Content-Length: 2\r\n") {
				t.Errorf("framing broken:\n%q", wire)
			}
		})
	}
}

// TestPrepareRequestStripsProxyHeader: a client's Proxy header would become
// HTTP_PROXY in a CGI upstream, where HTTP clients read it as their
// outbound proxy ("httpoxy"); it is removed, whatever its spelling.
func TestPrepareRequestStripsProxyHeader(t *testing.T) {
	tests := []struct {
		give      string
		wantStrip bool
	}{
		{give: "Proxy", wantStrip: true},
		{give: "PROXY", wantStrip: true},
		{give: "Proxy-Authorization", wantStrip: true},
		{give: "Proxy-Id", wantStrip: false},
		{give: "Proxyish", wantStrip: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			req := rawRequest(t, "GET / HTTP/1.1\r\nHost: a\r\n"+tt.give+": http://evil.example:8080\r\n\r\n")
			PrepareRequest(req, net.ParseIP("203.0.113.7"), false, nil, nil, nil)
			wire := strings.ToLower(req.String())
			if got := strings.Contains(wire, "\r\n"+strings.ToLower(tt.give)+":"); got == tt.wantStrip {
				t.Errorf("%s stripped = %v, want %v:\n%s", tt.give, !got, tt.wantStrip, wire)
			}
		})
	}
}
