// Package loadgen is the HTTP/1.1 load generator of the benchmarks: a fixed
// number of keep-alive connections, each sending pre-serialised requests
// one at a time, either as fast as the server answers (closed loop) or on a
// constant-rate schedule (open loop) whose latencies are measured from the
// time each request was due, so a stalled server is charged for every
// request it delayed (coordinated omission corrected, as wrk2 does).
// Requests can carry per-user bearer tokens, spread over the users, so
// per-user rate-limit and revocation keys look like real traffic.
package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Options configure a run.
type Options struct {
	// URL is the target, http://host:port/path?query, or https:// for TLS
	// (the server's certificate is not verified: this measures, it does
	// not check; see TLSConfig).
	URL string
	// Method defaults to GET.
	Method string
	// Headers are extra request headers, "Name: value".
	Headers []string
	// Body is sent with every request (with a Content-Length).
	Body []byte
	// Tokens are bearer tokens; request i of a connection uses a different
	// token than request i-1, and all tokens are used. None: no
	// Authorization header.
	Tokens []string
	// Connections is the number of concurrent connections (default 1).
	Connections int
	// Duration is how long to send (required).
	Duration time.Duration
	// Rate, when positive, is the open-loop request rate per second across
	// all connections; zero runs closed loop.
	Rate float64
	// Timeout bounds each request (default 5s).
	Timeout time.Duration
	// RequestsPerConn, when positive, closes and reopens each connection
	// after that many requests. With 1 and an https URL, every request
	// pays a full TLS handshake.
	RequestsPerConn int
	// TLSConfig, for an https URL, replaces the default client settings:
	// no verification, the URL's host as server name, X25519 key exchange
	// (what every TLS 1.3 server offers, so that servers compare on the
	// same work) and no session resumption (each connection is a full
	// handshake).
	TLSConfig *tls.Config
	// Progress receives a progress line every ProgressEvery (default 1s)
	// while the run lasts; nil prints nothing.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// Result is what a run measured. Latencies are from the moment a request
// was due (open loop) or sent (closed loop) to the end of its response.
type Result struct {
	URL         string  `json:"url"`
	Mode        string  `json:"mode"`
	Connections int     `json:"connections"`
	Users       int     `json:"users"`
	DurationSec float64 `json:"duration_s"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	// Requests counts the responses received within the run.
	Requests uint64  `json:"requests"`
	RPS      float64 `json:"rps"`
	// Non2xx counts responses whose status is not 2xx.
	Non2xx uint64 `json:"non_2xx"`
	// Errors counts transport failures: connect, timeout, read, write.
	Errors     uint64            `json:"errors"`
	Status     map[string]uint64 `json:"status"`
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	// Latency is corrected for coordinated omission in open loop.
	Latency Percentiles `json:"latency"`
	// ServiceTime is the uncorrected send-to-response time (open loop
	// only): the difference to Latency is queueing behind slow responses.
	ServiceTime *Percentiles `json:"service_time,omitempty"`
	// Saturated is set in open loop when fewer than 95 % of the scheduled
	// requests were answered: the target could not keep up with Rate.
	Saturated bool `json:"saturated,omitempty"`
}

// Errors of Run's options.
var (
	ErrBadURL      = errors.New("url must be http://host[:port]/path or https://host[:port]/path")
	ErrNoDuration  = errors.New("duration must be positive")
	ErrBadRate     = errors.New("rate must not be negative")
	ErrBadConns    = errors.New("connections must not be negative")
	ErrBadHeader   = errors.New(`header must be "Name: value"`)
	ErrBadPerConns = errors.New("requests per connection must not be negative")
)

const (
	errConnect = iota
	errTimeout
	errRead
	errWrite
	numErrKinds
)

var errKindNames = [numErrKinds]string{"connect", "timeout", "read", "write"}

type compiled struct {
	addr     string
	reqs     [][]byte
	open     bool
	interval time.Duration
	timeout  time.Duration
	perConn  int
	skipBody bool
	// tls is set for https: the handshake happens on the connection's
	// first write, so it counts in the first request's latency.
	tls *tls.Config
}

// compile checks o and serialises one request per token.
func compile(o *Options) (*compiled, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w, got %q", ErrBadURL, o.URL)
	}
	switch {
	case o.Duration <= 0:
		return nil, ErrNoDuration
	case o.Rate < 0:
		return nil, ErrBadRate
	case o.Connections < 0:
		return nil, ErrBadConns
	case o.RequestsPerConn < 0:
		return nil, ErrBadPerConns
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	method := strings.ToUpper(o.Method)
	if method == "" {
		method = fasthttp.MethodGet
	}
	path := u.RequestURI()
	var common strings.Builder
	for _, h := range o.Headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("%w, got %q", ErrBadHeader, h)
		}
		common.WriteString(strings.TrimSpace(name) + ": " + strings.TrimSpace(value) + "\r\n")
	}
	if len(o.Body) > 0 || method == fasthttp.MethodPost || method == fasthttp.MethodPut {
		common.WriteString("Content-Length: " + strconv.Itoa(len(o.Body)) + "\r\n")
	}
	build := func(token string) []byte {
		var b strings.Builder
		b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: gatewayd-bench\r\n")
		if token != "" {
			b.WriteString("Authorization: Bearer " + token + "\r\n")
		}
		b.WriteString(common.String())
		b.WriteString("\r\n")
		return append([]byte(b.String()), o.Body...)
	}
	c := &compiled{addr: addr, timeout: o.Timeout, perConn: o.RequestsPerConn, skipBody: method == fasthttp.MethodHead}
	if u.Scheme == "https" {
		c.tls = o.TLSConfig
		if c.tls == nil {
			c.tls = &tls.Config{
				ServerName:         u.Hostname(),
				InsecureSkipVerify: true, //nolint:gosec // a load generator measures; it does not authenticate
				CurvePreferences:   []tls.CurveID{tls.X25519},
			}
		}
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if len(o.Tokens) == 0 {
		c.reqs = [][]byte{build("")}
	}
	for _, t := range o.Tokens {
		c.reqs = append(c.reqs, build(t))
	}
	if o.Rate > 0 {
		c.open = true
		conns := max(o.Connections, 1)
		c.interval = time.Duration(float64(time.Second) * float64(conns) / o.Rate)
		if c.interval <= 0 {
			c.interval = 1
		}
	}
	return c, nil
}

// worker drives one connection.
type worker struct {
	id      int
	hist    *Histogram
	service *Histogram
	status  [600]uint64 // by status code; 0 holds codes out of range
	errs    [numErrKinds]uint64
	done    atomic.Uint64 // responses, for progress
	failed  atomic.Uint64 // transport errors, for progress

	mu   sync.Mutex
	conn net.Conn
}

// runner is one run's shared state.
type runner struct {
	c       *compiled
	conns   int
	start   time.Time
	end     time.Time
	stopped atomic.Bool
	workers []*worker
}

// Run sends load as o describes until o.Duration passes or ctx ends, and
// returns what it measured.
func Run(ctx context.Context, o Options) (*Result, error) {
	c, err := compile(&o)
	if err != nil {
		return nil, err
	}
	r := &runner{c: c, conns: max(o.Connections, 1)}
	r.workers = make([]*worker, r.conns)
	for i := range r.workers {
		w := &worker{id: i, hist: NewHistogram()}
		if c.open {
			w.service = NewHistogram()
		}
		r.workers[i] = w
	}
	r.start = time.Now()
	r.end = r.start.Add(o.Duration)

	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(w)
		}()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	r.wait(ctx, finished, o.Progress, o.ProgressEvery, o.Duration)
	<-finished
	return r.result(&o, time.Since(r.start)), nil
}

// wait prints progress until the run ends or ctx is cancelled, then stops
// the workers, interrupting requests still in flight.
func (r *runner) wait(ctx context.Context, finished <-chan struct{}, progress io.Writer, every, total time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(time.Until(r.end))
	defer deadline.Stop()
	var last uint64
	lastAt := r.start
	line := func(final bool) {
		var n, e uint64
		for _, w := range r.workers {
			n += w.done.Load()
			e += w.failed.Load()
		}
		now := time.Now()
		from, base := lastAt, last
		if final {
			from, base = r.start, 0 // the average of the whole run
		}
		rate := float64(n-base) / now.Sub(from).Seconds()
		last, lastAt = n, now
		fmt.Fprintf(progress, "\r[%4.0fs/%.0fs] %9.0f req/s  %10d responses  %6d errors ",
			now.Sub(r.start).Seconds(), total.Seconds(), rate, n, e)
	}
wait:
	for {
		select {
		case <-tick.C:
			if progress != nil {
				line(false)
			}
		case <-deadline.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-finished:
			break wait
		}
	}
	r.stopped.Store(true)
	for _, w := range r.workers {
		w.mu.Lock()
		if w.conn != nil {
			_ = w.conn.SetDeadline(time.Now())
		}
		w.mu.Unlock()
	}
	if progress != nil {
		line(true)
		fmt.Fprintln(progress)
	}
}

func (w *worker) setConn(c net.Conn) {
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()
}

func (r *runner) work(w *worker) {
	c := r.c
	var (
		conn    net.Conn
		br      *bufio.Reader
		bw      *bufio.Writer
		resp    fasthttp.Response
		onConn  int
		idx     = w.id % len(c.reqs)
		next    = r.start.Add(time.Duration(int64(c.interval) * int64(w.id) / int64(r.conns)))
		backoff = time.Millisecond
	)
	resp.SkipBody = c.skipBody
	closeConn := func() {
		if conn != nil {
			_ = conn.Close()
			conn = nil
			w.setConn(nil)
		}
	}
	defer closeConn()
	for !r.stopped.Load() {
		var due time.Time
		if c.open {
			if !next.Before(r.end) {
				return
			}
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			due = next
			next = next.Add(c.interval)
		} else if !time.Now().Before(r.end) {
			return
		}
		if conn == nil {
			nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
			if err != nil {
				if !r.stopped.Load() {
					w.errs[errConnect]++
					w.failed.Add(1)
				}
				time.Sleep(backoff)
				backoff = min(2*backoff, 100*time.Millisecond)
				continue
			}
			backoff = time.Millisecond
			if c.tls != nil {
				nc = tls.Client(nc, c.tls)
			}
			conn, onConn = nc, 0
			w.setConn(nc)
			if br == nil {
				br = bufio.NewReaderSize(conn, 16<<10)
				bw = bufio.NewWriterSize(conn, 4<<10)
			} else {
				br.Reset(conn)
				bw.Reset(conn)
			}
			if r.stopped.Load() {
				return
			}
		}
		req := c.reqs[idx]
		idx += r.conns
		if idx >= len(c.reqs) {
			idx %= len(c.reqs)
		}
		sent := time.Now()
		if !c.open {
			due = sent
		}
		_ = conn.SetDeadline(sent.Add(c.timeout))
		_, err := bw.Write(req)
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			w.fail(r, errWrite, err)
			closeConn()
			continue
		}
		resp.Reset()
		resp.SkipBody = c.skipBody
		err = resp.Read(br)
		got := time.Now()
		if err != nil {
			w.fail(r, errRead, err)
			closeConn()
			continue
		}
		if got.After(r.end) {
			return
		}
		code := resp.StatusCode()
		if code < 0 || code >= len(w.status) {
			code = 0
		}
		w.status[code]++
		w.hist.Record(got.Sub(due))
		if w.service != nil {
			w.service.Record(got.Sub(sent))
		}
		w.done.Add(1)
		onConn++
		if resp.ConnectionClose() || (c.perConn > 0 && onConn >= c.perConn) {
			closeConn()
		}
	}
}

// fail counts a transport error unless the run is over (the stop
// interrupts requests in flight on purpose).
func (w *worker) fail(r *runner, kind int, err error) {
	if r.stopped.Load() || !time.Now().Before(r.end) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		kind = errTimeout
	}
	w.errs[kind]++
	w.failed.Add(1)
}

func (r *runner) result(o *Options, elapsed time.Duration) *Result {
	res := &Result{
		URL:         o.URL,
		Mode:        "closed",
		Connections: r.conns,
		Users:       len(o.Tokens),
		Status:      map[string]uint64{},
	}
	dur := o.Duration
	if elapsed < dur {
		dur = elapsed // cancelled early
	}
	res.DurationSec = dur.Seconds()
	hist := NewHistogram()
	var service *Histogram
	if r.c.open {
		res.Mode = "open"
		res.TargetRate = o.Rate
		service = NewHistogram()
	}
	for _, w := range r.workers {
		hist.Merge(w.hist)
		if service != nil {
			service.Merge(w.service)
		}
		for code, n := range w.status {
			if n == 0 {
				continue
			}
			res.Requests += n
			if code < 200 || code > 299 {
				res.Non2xx += n
			}
			key := strconv.Itoa(code)
			if code == 0 {
				key = "other"
			}
			res.Status[key] += n
		}
		for k, n := range w.errs {
			if n == 0 {
				continue
			}
			if res.ErrorKinds == nil {
				res.ErrorKinds = map[string]uint64{}
			}
			res.ErrorKinds[errKindNames[k]] += n
			res.Errors += n
		}
	}
	if dur > 0 {
		res.RPS = float64(res.Requests) / dur.Seconds()
	}
	res.Latency = hist.Summary()
	if service != nil {
		s := service.Summary()
		res.ServiceTime = &s
		res.Saturated = float64(res.Requests) < 0.95*o.Rate*dur.Seconds()
	}
	return res
}

// Text renders res for people, several lines.
func (res *Result) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s loop, %d connections", res.URL, res.Mode, res.Connections)
	if res.Users > 0 {
		fmt.Fprintf(&b, ", %d users", res.Users)
	}
	if res.Mode == "open" {
		fmt.Fprintf(&b, ", target %.0f req/s", res.TargetRate)
	}
	fmt.Fprintf(&b, "\n  %d responses in %.1fs = %.0f req/s, %d non-2xx, %d transport errors\n",
		res.Requests, res.DurationSec, res.RPS, res.Non2xx, res.Errors)
	l := res.Latency
	name := "latency"
	if res.Mode == "open" {
		name = "latency (from the scheduled send time)"
	}
	fmt.Fprintf(&b, "  %s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
		name, l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if s := res.ServiceTime; s != nil {
		fmt.Fprintf(&b, "  service time ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", s.P50, s.P99, s.P999, s.Max)
	}
	fmt.Fprintf(&b, "  status:")
	for _, k := range sortedKeys(res.Status) {
		fmt.Fprintf(&b, " %s=%d", k, res.Status[k])
	}
	for _, k := range sortedKeys(res.ErrorKinds) {
		fmt.Fprintf(&b, " %s-errors=%d", k, res.ErrorKinds[k])
	}
	b.WriteString("\n")
	if res.Saturated {
		b.WriteString("  saturated: fewer than 95% of the scheduled requests were answered\n")
	}
	return b.String()
}

func sortedKeys(m map[string]uint64) []string { return slices.Sorted(maps.Keys(m)) }
