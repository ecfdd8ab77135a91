package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// fuzzIdentityNames are the claimed names FuzzIdentityHeaders strips: a
// forward_claims header outside X-User-*, and names in the style of the
// client-certificate and api-key headers.
var fuzzIdentityNames = []string{"X-Tenant", "X-Client-Cert-Subject", "X-Api-Key-Id"}

// FuzzIdentityHeaders sends requests with arbitrary header names through
// PrepareRequest and reads the request the upstream would receive: no
// header whose name folds (ASCII case ignored, '_' as '-', surrounding
// whitespace trimmed as lenient parsers do) to an identity header may be
// on the wire, whether the peer is trusted or not.
func FuzzIdentityHeaders(f *testing.F) {
	for _, seed := range []string{
		"X-User-ID", "X_User_ID", "x_user_role", "x-user_email", "X-USER-", "X_USER_",
		"X-Tenant", "X_Tenant", "x_TENANT", "x-tenant ", "X-Tenant\t", " X-Tenant",
		"X_Client_Cert_Subject", "x-api-key_id", "X-Tenants", "X-Username", "X.Tenant",
		"X-User-ID\r\nX_User_Role: root", "Connection: X_User_ID\r\nX_User_ID",
		"Trailer: X_Tenant\r\nX_Tenant", "X-User-\xffID", "X\x00User-ID",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	ids := NewIdentityHeaders(fuzzIdentityNames)
	tp, err := ParseTrustedProxies([]string{"10.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, trustedPeer bool) {
		raw := "POST /x HTTP/1.1\r\nHost: a\r\n" + name + ": forged\r\nContent-Length: 2\r\n\r\nok"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			return // the server answers unparsable requests itself
		}
		peer := net.ParseIP("203.0.113.7")
		if trustedPeer {
			peer = net.ParseIP("10.0.0.2")
		}
		PrepareRequest(&req, peer, false, tp, ids, nil)
		var wire bytes.Buffer
		if err := req.Write(bufio.NewWriter(&wire)); err != nil {
			return
		}
		head, _, _ := bytes.Cut(wire.Bytes(), []byte("\r\n\r\n"))
		lines := strings.Split(string(head), "\r\n")
		for _, line := range lines[1:] {
			n, _, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if isIdentityName(n) {
				t.Fatalf("client header %q reached the upstream as %q:\n%s", name, n, head)
			}
		}
	})
}

// isIdentityName is the fuzz oracle, written independently of the code
// under test: fold with the strings package and compare.
func isIdentityName(n string) bool {
	f := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(n)), "_", "-")
	if strings.HasPrefix(f, "x-user-") {
		return true
	}
	for _, id := range fuzzIdentityNames {
		if f == strings.ToLower(id) {
			return true
		}
	}
	return false
}
