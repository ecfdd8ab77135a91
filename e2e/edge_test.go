package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

const drainConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  shutdown_delay: 1s
  shutdown_timeout: 5s
log: { level: warn, access_log: false }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: api
    match: { path_prefix: /v1/ }
    upstream: echo
`

// drainTally counts what happened to the requests of TestDrainLosesNothing.
type drainTally struct {
	ok         atomic.Int64 // a full response
	closeHdr   atomic.Int64 // of which carried Connection: close
	refused    atomic.Int64 // the dial was refused: nothing sent
	notSent    atomic.Int64 // the write failed: the client knows it was not sent
	lost       atomic.Int64 // written on a kept-alive connection, no full response
	newConnErr atomic.Int64 // written on a fresh connection, no response
}

// keepAliveClient sends POSTs (never retried by any client) on one
// keep-alive connection at a time, reconnecting when the gateway closes it,
// until stop is closed.
func keepAliveClient(addr string, stop <-chan struct{}, tally *drainTally) {
	var (
		c      net.Conn
		br     *bufio.Reader
		onConn int // requests completed on c
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	const req = "POST /v1/drain HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	for {
		select {
		case <-stop:
			return
		default:
		}
		if c == nil {
			var err error
			c, err = net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				tally.refused.Add(1)
				time.Sleep(10 * time.Millisecond)
				c = nil
				continue
			}
			br, onConn = bufio.NewReader(c), 0
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			tally.notSent.Add(1)
			c.Close()
			c = nil
			continue
		}
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			if onConn > 0 {
				tally.lost.Add(1)
			} else {
				tally.newConnErr.Add(1)
			}
			c.Close()
			c = nil
			continue
		}
		tally.ok.Add(1)
		onConn++
		if resp.Close {
			tally.closeHdr.Add(1)
			c.Close()
			c = nil
		}
	}
}

// TestDrainLosesNothing sends SIGTERM while 32 keep-alive clients hammer
// the gateway: through shutdown_delay and the drain every response carries
// Connection: close, so no request written on a kept-alive connection meets
// a closed socket.
func TestDrainLosesNothing(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(drainConfig, startEcho(t, "echo")))
	var tally drainTally
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keepAliveClient(gw.Addr, stop, &tally)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	before := tally.ok.Load()
	if before == 0 {
		close(stop)
		wg.Wait()
		t.Fatal("no request succeeded before SIGTERM")
	}
	gw.Signal(syscall.SIGTERM)
	code, err := gw.Wait(15 * time.Second)
	// Keep knocking briefly after the exit: those dials are refused.
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil || code != 0 {
		t.Fatalf("exit code %d, %v", code, err)
	}
	t.Logf("responses %d (%d before SIGTERM, %d with Connection: close), refused dials %d, unsent %d, failed on a new connection %d, lost %d",
		tally.ok.Load(), before, tally.closeHdr.Load(), tally.refused.Load(), tally.notSent.Load(), tally.newConnErr.Load(), tally.lost.Load())
	if n := tally.lost.Load(); n != 0 {
		t.Fatalf("%d requests written on kept-alive connections got no response", n)
	}
	if tally.closeHdr.Load() == 0 {
		t.Fatal("no response carried Connection: close during the drain")
	}
}

// TestAdminRefusesCrossSiteReload: a browser page cannot make the gateway
// reload, neither by a cross-site POST (Origin) nor through DNS rebinding
// (a foreign Host), while scrapers with any Host keep reading /metrics.
func TestAdminRefusesCrossSiteReload(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(drainConfig, startEcho(t, "echo")))
	_, port, _ := net.SplitHostPort(gw.AdminAddr)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveHdr    map[string]string
		wantStatus int
	}{
		{name: "cross-site post", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Origin": "http://evil.example"}, wantStatus: 403},
		{name: "rebound host", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "evil.example"}, wantStatus: 403},
		{name: "rebound host with port", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "evil.example:" + port}, wantStatus: 403},
		{name: "operator", giveMethod: "POST", givePath: "/-/reload", wantStatus: 200},
		{name: "operator by localhost", giveMethod: "POST", givePath: "/-/reload", giveHdr: map[string]string{"Host": "localhost:" + port}, wantStatus: 200},
		{name: "scraper", giveMethod: "GET", givePath: "/metrics", giveHdr: map[string]string{"Host": "gw-1.internal:9901"}, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.giveMethod, gw.AdminURL(tt.givePath), tt.giveHdr, "")
			if r.Status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.wantStatus, r.Body)
			}
			if tt.wantStatus == 403 {
				if e := decodeError(t, r); e.Error != "forbidden" {
					t.Fatalf("code %q", e.Error)
				}
			}
		})
	}
}

const floodConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  max_connections: 40
  max_connections_per_ip: 10
  header_timeout: 1s
  read_timeout: 10s
log: { level: warn, access_log: false }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: api
    match: { path_prefix: /v1/ }
    upstream: echo
`

// dialFrom opens a connection to addr from the loopback address local
// (127.0.0.0/8 is all loopback on Linux, so each is a distinct peer).
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// idleConns opens n connections from local that send nothing.
func idleConns(t *testing.T, local, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialFrom(t, local, addr)
	}
	return conns
}

// get sends one GET on c and returns the status line, headers and body.
func get(t *testing.T, c net.Conn, path string) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// wantUnavailable checks a connection-cap refusal: the JSON 503 of the
// gateway's errors, never fasthttp's text/plain message.
func wantUnavailable(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.StatusCode, body)
	}
	e := decodeError(t, response{Status: resp.StatusCode, Header: resp.Header, Body: body})
	if e.Error != "unavailable" || strings.Contains(string(body), "Concurrency") {
		t.Fatalf("refusal body %s", body)
	}
	if !resp.Close {
		t.Fatal("a refused connection is not closed")
	}
}

// TestConnectionFloodPerIP: idle connections from one address fill that
// address's cap only; a client on another address is served at once, and
// the flooder's next connection gets the JSON 503.
func TestConnectionFloodPerIP(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(floodConfig, startEcho(t, "echo")))
	idleConns(t, "127.0.0.1", gw.Addr, 10)
	waitRefused(t, "127.0.0.1", gw.Addr)

	c := dialFrom(t, "127.0.0.2", gw.Addr)
	start := time.Now()
	resp, body := get(t, c, "/v1/ok")
	if resp.StatusCode != 200 {
		t.Fatalf("another address: status %d: %s", resp.StatusCode, body)
	}
	// Well under header_timeout: the idle connections did not hold it up.
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("another address waited %v", d)
	}

	resp, body = get(t, dialFrom(t, "127.0.0.1", gw.Addr), "/v1/flood")
	wantUnavailable(t, resp, body)
	if !strings.Contains(string(body), "this address") {
		t.Fatalf("per-address refusal says %s", body)
	}
}

// waitRefused waits until a connection from local is refused with the 503,
// i.e. the gateway has accepted every connection opened before.
func waitRefused(t *testing.T, local, addr string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := dialFrom(t, local, addr)
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		_, _ = io.WriteString(c, "GET /v1/probe HTTP/1.1\r\nHost: gw\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections from %s are not refused (last: %v)", local, err)
		}
	}
}

// TestConnectionFloodGlobal: idle connections from many addresses fill
// max_connections; the next one gets the JSON 503, and header_timeout
// frees the slots within about a second, not read_timeout's 10.
func TestConnectionFloodGlobal(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(floodConfig, startEcho(t, "echo")))
	var idle []net.Conn
	for i := 3; i < 7; i++ {
		idle = append(idle, idleConns(t, fmt.Sprintf("127.0.0.%d", i), gw.Addr, 10)...)
	}
	opened := time.Now()
	resp, body := get(t, dialFrom(t, "127.0.0.8", gw.Addr), "/v1/over")
	wantUnavailable(t, resp, body)
	if !strings.Contains(string(body), "too many connections") {
		t.Fatalf("global refusal says %s", body)
	}

	// The idle connections are answered 408 and closed after header_timeout.
	for _, c := range idle[:3] {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("idle connection: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"request_timeout"`) {
			t.Fatalf("idle connection answered %d %s", resp.StatusCode, b)
		}
	}
	if d := time.Since(opened); d > 5*time.Second {
		t.Fatalf("idle connections held for %v", d)
	}
	// Their places are free again.
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, body := get(t, dialFrom(t, "127.0.0.8", gw.Addr), "/v1/after")
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after the idle connections were closed: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlowHeadersClosed: a client dribbling its headers is cut off at
// header_timeout, while a body may take longer than header_timeout
// (read_timeout covers it).
func TestSlowHeadersClosed(t *testing.T) {
	gw := gatewaytest.Start(t, fmt.Sprintf(floodConfig, startEcho(t, "echo")))

	c := dialFrom(t, "127.0.0.1", gw.Addr)
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	slow := "GET /v1/slow HTTP/1.1\r\nHost: gw\r\nX-Slow: " + strings.Repeat("a", 40)
	var werr error
	for i := 0; i < len(slow) && werr == nil; i++ {
		_, werr = c.Write([]byte{slow[i]})
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow headers answered %d %s", resp.StatusCode, b)
		}
		decodeError(t, response{Status: resp.StatusCode, Header: resp.Header, Body: b})
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("slow-header connection kept for %v", d)
	}

	// Headers in time, body after header_timeout: served.
	c = dialFrom(t, "127.0.0.1", gw.Addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST /v1/body HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("slow body: status %d", resp.StatusCode)
	}

	// A request without a body, then a pause longer than header_timeout on
	// the kept-alive connection (idle, not a slow request): the next
	// request is served on the same connection.
	c = dialFrom(t, "127.0.0.1", gw.Addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		if i == 1 {
			time.Sleep(1500 * time.Millisecond)
		}
		if _, err := io.WriteString(c, "GET /v1/idle HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept-alive connection: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d on the kept-alive connection: status %d", i+1, resp.StatusCode)
		}
	}
}

const bodyConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  read_timeout: 30s
  max_connections_per_ip: 0
log: { level: warn, access_log: false }
upstreams:
  sink: { targets: ["http://%s"], timeout: 30s }
routes:
  - name: upload
    match: { path_prefix: /v1/ }
    upstream: sink
`

// startSink runs an upstream that reads and drops request bodies of any
// size, and answers with the number of bytes it read.
func startSink(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, n)
	})}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// rssBytes returns the resident set size of process pid, from
// /proc/<pid>/status.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestHostileBodiesBoundedMemory holds 40 connections, each with an almost
// complete 10MiB body, on a public route: the gateway streams them to the
// upstream, so its RSS stays under 100MiB, and it falls back once the
// clients leave. The binary is built without the race detector, which
// would multiply the figures.
func TestHostileBodiesBoundedMemory(t *testing.T) {
	const (
		clients = 40
		size    = 10 << 20
		held    = 4 << 10 // bytes never sent
	)
	gw := gatewaytest.Start(t, fmt.Sprintf(bodyConfig, startSink(t)), gatewaytest.Options{NoRace: true})
	pid := gw.Cmd.Process.Pid
	idle := rssBytes(t, pid)

	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'a' + byte(i%26)
	}
	conns := make([]net.Conn, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range conns {
		c, err := net.DialTimeout("tcp", gw.Addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			hdr := "POST /v1/upload HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n"
			if _, err := io.WriteString(c, hdr); err != nil {
				errs <- err
				return
			}
			for left := size - held; left > 0; {
				n := min(left, len(chunk))
				if _, err := c.Write(chunk[:n]); err != nil {
					errs <- err
					return
				}
				left -= n
			}
		}()
	}
	// Sample while the bodies arrive and while they are held.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := idle
	sample := func() {
		if r := rssBytes(t, pid); r > peak {
			peak = r
		}
	}
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(50 * time.Millisecond):
			sample()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("sending a body: %v", err)
	}
	for range 10 {
		sample()
		time.Sleep(50 * time.Millisecond)
	}
	holding := rssBytes(t, pid)

	for _, c := range conns {
		c.Close()
	}
	var after int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = rssBytes(t, pid)
		if after < holding || after <= idle+16<<20 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("gateway RSS: idle %d MiB, peak %d MiB while %d clients held unfinished %d MiB bodies (%d MiB at the end), %d MiB after they left",
		idle>>20, peak>>20, clients, size>>20, holding>>20, after>>20)
	if peak >= 100<<20 {
		t.Fatalf("RSS peaked at %d MiB, want under 100 MiB", peak>>20)
	}
	if after > holding && after > idle+16<<20 {
		t.Fatalf("RSS did not fall after the clients left: %d MiB (held %d MiB, idle %d MiB)", after>>20, holding>>20, idle>>20)
	}

	// The gateway still serves bodies whole, small and large.
	for _, n := range []int{10, 200 << 10} {
		r := do(t, "POST", gw.URL("/v1/upload"), nil, strings.Repeat("x", n))
		if r.Status != 200 || string(r.Body) != strconv.Itoa(n) {
			t.Fatalf("a %d-byte body: %d %s", n, r.Status, r.Body)
		}
	}
}

// streamConfig streams bodies over 1KiB, accepts up to 256KiB, and serves
// the in-process auth service.
const streamConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
server:
  max_request_body_bytes: 256KiB
  stream_request_body_threshold: 1KiB
  read_timeout: 1s
log: { level: warn, access_log: false }
upstreams:
  sink: { targets: ["http://%s"] }
  echo: { targets: ["http://%s"] }
auth:
  secret: ${JWT_SECRET}
  bcrypt_cost: 4
  users_file: "{{DIR}}/users.db"
routes:
  - name: auth
    match: { path_prefix: /v1/auth/ }
    upstream: builtin:auth
  - name: sink
    match: { path_prefix: /sink/ }
    upstream: sink
  - name: echo
    match: { path_prefix: /echo/ }
    upstream: echo
`

// recordingSink is an upstream that records, for each request, how many
// body bytes it read and whether the body ended properly.
type recordingSink struct {
	mu   sync.Mutex
	seen []sinkRead
}

type sinkRead struct {
	n        int64
	complete bool
}

func (s *recordingSink) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, sinkRead{n: n, complete: err == nil})
		s.mu.Unlock()
		fmt.Fprint(w, n)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func (s *recordingSink) reads() []sinkRead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRead(nil), s.seen...)
}

// chunked frames body as one chunk per 4KiB.
func chunked(body string) string {
	var sb strings.Builder
	for len(body) > 0 {
		n := min(len(body), 4<<10)
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	return sb.String()
}

// exchange writes raw on a new connection and reads the response.
func exchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestStreamedRequestBodies(t *testing.T) {
	var sink recordingSink
	gw := gatewaytest.Start(t, fmt.Sprintf(streamConfig, sink.start(t), startEcho(t, "echo")),
		gatewaytest.Options{Env: []string{"JWT_SECRET=" + testSecret}})
	big := strings.Repeat("b", 200<<10)

	t.Run("content-length over the limit is refused before the body", func(t *testing.T) {
		// Only the headers are sent: the answer must not wait for the body.
		resp, body := exchange(t, gw.Addr, "POST /sink/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1048576\r\n\r\n")
		if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) || !resp.Close {
			t.Fatalf("%d %s (close %v)", resp.StatusCode, body, resp.Close)
		}
	})
	t.Run("expect 100-continue over the limit is refused without inviting the body", func(t *testing.T) {
		resp, body := exchange(t, gw.Addr, "POST /sink/x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n")
		if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) || !resp.Close {
			t.Fatalf("%d %s (close %v)", resp.StatusCode, body, resp.Close)
		}
	})
	t.Run("chunked over the limit is cut off and the upstream aborted", func(t *testing.T) {
		before := len(sink.reads())
		resp, body := exchange(t, gw.Addr, "POST /sink/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"+
			chunked(strings.Repeat("c", 300<<10))+"0\r\n\r\n")
		if resp.StatusCode != 413 || !strings.Contains(body, `"payload_too_large"`) || !resp.Close {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		// The upstream saw a body that never ended properly, never more
		// than the limit.
		deadline := time.Now().Add(3 * time.Second)
		for len(sink.reads()) == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		reads := sink.reads()
		if len(reads) != before+1 {
			t.Fatalf("upstream saw %d requests", len(reads)-before)
		}
		if r := reads[before]; r.complete || r.n > 256<<10 {
			t.Fatalf("upstream read %d bytes, complete %v", r.n, r.complete)
		}
	})
	t.Run("large bodies stream through whole", func(t *testing.T) {
		for _, raw := range []string{
			"POST /sink/x HTTP/1.1\r\nHost: gw\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n" + big,
			"POST /sink/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(big) + "0\r\n\r\n",
		} {
			resp, body := exchange(t, gw.Addr, raw)
			if resp.StatusCode != 200 || body != strconv.Itoa(len(big)) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		}
	})
	t.Run("small chunked bodies are buffered", func(t *testing.T) {
		resp, body := exchange(t, gw.Addr, "POST /echo/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked("hello")+"0\r\n\r\n")
		if resp.StatusCode != 200 || !strings.Contains(body, `"body_size": 5`) || !strings.Contains(body, `"Content-Length": [`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("a stalled body gets 408", func(t *testing.T) {
		resp, body := exchange(t, gw.Addr, "POST /sink/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("s", 50000))
		if resp.StatusCode != 408 || !strings.Contains(body, `"request_timeout"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("builtin auth reads bodies over the threshold", func(t *testing.T) {
		// A JSON body over 1KiB (padded with whitespace): streamed by the
		// listener, read whole for the auth service.
		pad := strings.Repeat(" ", 4<<10)
		r := do(t, "POST", gw.URL("/v1/auth/signup"), jsonHdr, `{"email":"big@example.com",`+pad+`"password":"correct-horse-battery-42"}`)
		if r.Status != 201 {
			t.Fatalf("signup: %d %s", r.Status, r.Body)
		}
		r = do(t, "POST", gw.URL("/v1/auth/login"), jsonHdr, `{"email":"big@example.com","password":"correct-horse-battery-42"}`)
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		r = do(t, "POST", gw.URL("/v1/auth/login"), jsonHdr, `{"email":"big@example.com",`+strings.Repeat(" ", 100<<10)+`"password":"x"}`)
		if r.Status != 413 || decodeError(t, r).Error != "payload_too_large" {
			t.Fatalf("auth body over 64KiB: %d %s", r.Status, r.Body)
		}
	})
}
