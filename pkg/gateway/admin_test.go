package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

const adminTestConfig = `
log: { access_log: false }
upstreams:
  up: { targets: ["http://127.0.0.1:1"] }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: up
`

// startAdmin serves a gateway with its admin listener on a loopback port
// and returns that port.
func startAdmin(t *testing.T) int {
	t.Helper()
	port, _ := startAdminFile(t)
	return port
}

// startAdminFile is startAdmin that also returns the configuration file.
func startAdminFile(t *testing.T) (int, string) {
	t.Helper()
	g := startMetricsGateway(t, adminTestConfig)
	_, port, err := net.SplitHostPort(g.admin)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n, g.file
}

func TestAdminRefusesCrossSiteRequests(t *testing.T) {
	port := startAdmin(t)
	own := "127.0.0.1:" + strconv.Itoa(port)
	p := ":" + strconv.Itoa(port)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveHost   string
		giveOrigin string
		wantStatus int
	}{
		{name: "reload by own address", giveMethod: "POST", givePath: "/-/reload", giveHost: own, wantStatus: 200},
		{name: "reload by localhost", giveMethod: "POST", givePath: "/-/reload", giveHost: "localhost" + p, wantStatus: 200},
		{name: "reload by LOCALHOST", giveMethod: "POST", givePath: "/-/reload", giveHost: "LocalHost" + p, wantStatus: 200},
		{name: "reload by ::1", giveMethod: "POST", givePath: "/-/reload", giveHost: "[::1]" + p, wantStatus: 200},
		{name: "reload with an origin", giveMethod: "POST", givePath: "/-/reload", giveHost: own, giveOrigin: "http://evil.example", wantStatus: 403},
		{name: "reload with origin null", giveMethod: "POST", givePath: "/-/reload", giveHost: own, giveOrigin: "null", wantStatus: 403},
		{name: "reload with a same-host origin", giveMethod: "POST", givePath: "/-/reload", giveHost: own, giveOrigin: "http://" + own, wantStatus: 403},
		{name: "reload by a foreign name", giveMethod: "POST", givePath: "/-/reload", giveHost: "evil.example" + p, wantStatus: 403},
		{name: "reload by a foreign name without port", giveMethod: "POST", givePath: "/-/reload", giveHost: "evil.example", wantStatus: 403},
		{name: "reload by localhost on another port", giveMethod: "POST", givePath: "/-/reload", giveHost: "localhost:1", wantStatus: 403},
		{name: "reload by localhost without port", giveMethod: "POST", givePath: "/-/reload", giveHost: "localhost", wantStatus: 403},
		{name: "reload by a rebound subdomain", giveMethod: "POST", givePath: "/-/reload", giveHost: "localhost.evil.example" + p, wantStatus: 403},
		{name: "reload by a foreign address", giveMethod: "POST", givePath: "/-/reload", giveHost: "10.0.0.1" + p, wantStatus: 403},
		{name: "put elsewhere by a foreign name", giveMethod: "PUT", givePath: "/metrics", giveHost: "evil.example", wantStatus: 403},
		{name: "delete with an origin", giveMethod: "DELETE", givePath: "/healthz", giveHost: own, giveOrigin: "https://evil.example", wantStatus: 403},
		{name: "metrics scraped by a foreign name", giveMethod: "GET", givePath: "/metrics", giveHost: "gw-1.internal:9901", wantStatus: 200},
		{name: "metrics with an origin", giveMethod: "GET", givePath: "/metrics", giveHost: "evil.example", giveOrigin: "http://evil.example", wantStatus: 200},
		{name: "healthz by a foreign name", giveMethod: "HEAD", givePath: "/healthz", giveHost: "evil.example", wantStatus: 200},
		{name: "reload by GET is still 405", giveMethod: "GET", givePath: "/-/reload", giveHost: "evil.example", wantStatus: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Raw requests: the Host header is exactly the one given.
			raw := tt.giveMethod + " " + tt.givePath + " HTTP/1.1\r\nHost: " + tt.giveHost + "\r\nConnection: close\r\nContent-Length: 0\r\n"
			if tt.giveOrigin != "" {
				raw += "Origin: " + tt.giveOrigin + "\r\n"
			}
			c, err := net.Dial("tcp", own)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, raw+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: tt.giveMethod})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantStatus != 403 {
				return
			}
			var body map[string]string
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.Header.Get("Content-Type") != "application/json" || body["error"] != "forbidden" || body["message"] == "" || body["request_id"] == "" {
				t.Fatalf("403 body %s (Content-Type %q)", b, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestAdminHostOnWildcardListener covers a listener on every interface:
// the machine's own addresses name it, other addresses and names do not.
func TestAdminHostOnWildcardListener(t *testing.T) {
	g := &Gateway{}
	g.adminAddr.Store(&net.TCPAddr{IP: net.IPv4zero, Port: 9901})
	if !g.adminHostAllowed("127.0.0.1:9901") || !g.adminHostAllowed("localhost:9901") {
		t.Fatal("loopback refused on a wildcard listener")
	}
	if g.adminHostAllowed("127.0.0.1:9902") {
		t.Fatal("another port accepted")
	}
	if g.adminHostAllowed("192.0.2.77:9901") {
		t.Fatal("an address of no local interface accepted")
	}
	if g.adminHostAllowed("gw-1.internal:9901") {
		t.Fatal("a name accepted")
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		if host := net.JoinHostPort(n.IP.String(), "9901"); !g.adminHostAllowed(host) {
			t.Fatalf("the interface address %s refused", host)
		}
	}
}

// TestAdminReloadRejectedBody: a rejected reload answers with the error body
// every admin error has (error, message, request_id), plus the errors.
func TestAdminReloadRejectedBody(t *testing.T) {
	port, file := startAdminFile(t)
	if err := os.WriteFile(file, []byte(adminTestConfig+"    timeout: soon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error     string   `json:"error"`
		Message   string   `json:"message"`
		RequestID string   `json:"request_id"`
		Errors    []string `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body.Error != "bad_request" || body.Message == "" || len(body.RequestID) != 36 || len(body.Errors) != 1 {
		t.Fatalf("body %+v", body)
	}
}
