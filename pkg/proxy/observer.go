package proxy

import "github.com/valyala/fasthttp"

// Client kinds an Attempt names.
const (
	ClientHTTP      = "http"      // HTTP/1.1 over TCP
	ClientHTTPS     = "https"     // HTTP/1.1 over TLS
	ClientWebSocket = "websocket" // a WebSocket handshake (plain or TLS)
)

// Attempt describes one attempt of a request on one target, for an
// AttemptObserver. Its strings are the upstream's own: no copy is made.
type Attempt struct {
	// Upstream is the upstream's name.
	Upstream string
	// Target is the target's URL (scheme://host[:port]); Addr is the
	// host:port dialled.
	Target, Addr string
	// Client is ClientHTTP, ClientHTTPS or ClientWebSocket.
	Client string
	// N counts the request's attempts from 0.
	N int
}

// AttemptObserver is told about each attempt DoObserved and
// UpgradeObserved make: tracing records a span per attempt and the access
// log the last target and status. Its methods run on the request's
// goroutine, in pairs, and must not keep req or resp.
type AttemptObserver interface {
	// AttemptStart runs before req is sent to a.Target. It may set request
	// headers for this attempt (a traceparent naming the attempt's span).
	AttemptStart(req *fasthttp.Request, a Attempt)
	// AttemptEnd runs when the attempt is over: err is nil when resp holds
	// the target's answer.
	AttemptEnd(resp *fasthttp.Response, err error)
}

// attempt describes the n-th attempt of a request on t.
func (u *Upstream) attempt(t *target, n int, client string) Attempt {
	if client == "" {
		client = ClientHTTP
		if t.isTLS {
			client = ClientHTTPS
		}
	}
	return Attempt{Upstream: u.name, Target: t.url, Addr: t.addr, Client: client, N: n}
}
