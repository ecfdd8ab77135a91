package ipfilter

import (
	"encoding/json"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/plugintest"
	"github.com/gatewayd/gatewayd/pkg/plugins"
	"github.com/gatewayd/gatewayd/pkg/reqctx"
	"github.com/valyala/fasthttp"
)

func mustBuild(t testing.TB, src string) *Plugin {
	t.Helper()
	p, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].ip-filter", src), &plugins.Env{Route: "ipf-test"})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Plugin)
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{name: "bare", give: "", wantErr: "gateway.yaml: routes[0].plugins[0].ip-filter: give allow, deny or both"},
		{name: "empty lists", give: "allow: []", wantErr: "give allow, deny or both"},
		{name: "typo", give: "alow: [10.0.0.0/8]", wantErr: `gateway.yaml:1: routes[0].plugins[0].ip-filter.alow: unknown field "alow" (did you mean "allow"?)`},
		{name: "bad cidr", give: "allow:\n  - 10.0.0.0/8\n  - 10.0.0.0/33", wantErr: `gateway.yaml:3: routes[0].plugins[0].ip-filter.allow[1]: expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or an address, got "10.0.0.0/33"`},
		{name: "hostname", give: "deny: [example.com]", wantErr: `ip-filter.deny[0]: expected a CIDR`},
		{name: "zone", give: "deny: [\"fe80::1%eth0\"]", wantErr: "zoned addresses are not supported"},
		{name: "short mapped", give: "deny: [\"::ffff:0:0/80\"]", wantErr: "an IPv4-mapped prefix must be at least /96"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory{}.Build(plugintest.Section(t, "routes[0].plugins[0].ip-filter", tt.give), &plugins.Env{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		giveIP   string
		want     bool
	}{
		{name: "allow list hit", settings: "allow: [10.0.0.0/8, 192.168.0.0/16]", giveIP: "10.1.2.3", want: true},
		{name: "allow list miss", settings: "allow: [10.0.0.0/8, 192.168.0.0/16]", giveIP: "11.1.2.3", want: false},
		{name: "deny wins", settings: "allow: [10.0.0.0/8]\ndeny: [10.9.9.0/24]", giveIP: "10.9.9.7", want: false},
		{name: "deny only miss passes", settings: "deny: [10.9.9.0/24]", giveIP: "203.0.113.5", want: true},
		{name: "deny only hit", settings: "deny: [10.9.9.0/24]", giveIP: "10.9.9.1", want: false},
		{name: "bare ipv4 is /32", settings: "allow: [192.0.2.7]", giveIP: "192.0.2.7", want: true},
		{name: "bare ipv4 neighbour", settings: "allow: [192.0.2.7]", giveIP: "192.0.2.8", want: false},
		{name: "ipv6 prefix", settings: "allow: [\"2001:db8::/32\"]", giveIP: "2001:db8:1::5", want: true},
		{name: "ipv6 miss", settings: "allow: [\"2001:db8::/32\"]", giveIP: "2001:db9::5", want: false},
		{name: "bare ipv6 is /128", settings: "deny: [\"2001:db8::1\"]", giveIP: "2001:db8::1", want: false},
		{name: "ipv4-mapped client", settings: "allow: [10.0.0.0/8]", giveIP: "::ffff:10.1.1.1", want: true},
		{name: "ipv4-mapped rule", settings: "deny: [\"::ffff:10.0.0.0/104\"]", giveIP: "10.2.3.4", want: false},
		{name: "ipv4 rule not ipv6 client", settings: "allow: [0.0.0.0/0]", giveIP: "::1", want: false},
		{name: "host bits masked", settings: "allow: [10.1.2.3/8]", giveIP: "10.200.0.1", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustBuild(t, tt.settings)
			if got := p.Allowed(netip.MustParseAddr(tt.giveIP)); got != tt.want {
				t.Fatalf("Allowed(%s) = %v, want %v", tt.giveIP, got, tt.want)
			}
		})
	}
	if mustBuild(t, "deny: [10.0.0.0/8]").Allowed(netip.Addr{}) {
		t.Error("an unknown address is allowed")
	}
}

// The plugin decides on the client IP the gateway resolved (reqctx), not
// on the peer or on X-Forwarded-For.
func TestHandleUsesResolvedClientIP(t *testing.T) {
	p := mustBuild(t, "allow: [10.0.0.0/8]")
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1})
	ctx.Request.Header.Set("X-Forwarded-For", "10.0.0.2")
	st := reqctx.Acquire(&ctx)
	st.RequestID = append(st.RequestID[:0], "rid-1"...)
	st.ClientIP = append(st.ClientIP[:0], "203.0.113.9"...)
	if v := p.Handle(&ctx); v != plugins.Done {
		t.Fatalf("verdict %v, want Done", v)
	}
	if ctx.Response.StatusCode() != fasthttp.StatusForbidden {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	var body map[string]string
	if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
		t.Fatal(err)
	}
	if body["error"] != "forbidden" || body["message"] != "client address not allowed" || body["request_id"] != "rid-1" {
		t.Fatalf("body %v", body)
	}
	if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}

	ctx.Response.Reset()
	st.ClientIP = append(st.ClientIP[:0], "10.7.7.7"...)
	if v := p.Handle(&ctx); v != plugins.Next {
		t.Fatalf("verdict %v for an allowed client", v)
	}
}

// Without request state (outside the gateway) the peer address decides.
func TestHandleFallsBackToPeer(t *testing.T) {
	p := mustBuild(t, "allow: [127.0.0.0/8]")
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1})
	if v := p.Handle(&ctx); v != plugins.Next {
		t.Fatalf("verdict %v", v)
	}
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1})
	if v := p.Handle(&ctx); v != plugins.Done {
		t.Fatalf("verdict %v", v)
	}
}
