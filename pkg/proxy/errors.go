package proxy

import (
	"errors"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

var (
	// ErrTimeout reports that the upstream exchange did not finish within its
	// timeout, whether the time ran out while connecting, sending or reading.
	ErrTimeout = errors.New("proxy: upstream timed out")

	// ErrUnavailable reports that no target could take the request: every
	// target is ejected, or every connection slot to the chosen targets is busy.
	ErrUnavailable = errors.New("proxy: no upstream target available")

	// ErrBadGateway reports any other upstream failure: a refused or reset
	// connection, a malformed response or a response body over the size limit.
	ErrBadGateway = errors.New("proxy: bad gateway")
)

// UpstreamError describes a failed exchange with an upstream. It wraps one of
// ErrTimeout, ErrUnavailable or ErrBadGateway together with the underlying
// cause, so errors.Is works with the sentinels and logs keep the cause.
type UpstreamError struct {
	// Upstream is the upstream name from the configuration.
	Upstream string
	// Target is the target URL the last attempt went to, empty when no target
	// was picked.
	Target string
	// Kind is ErrTimeout, ErrUnavailable or ErrBadGateway.
	Kind error
	// Err is the underlying cause; it may be nil.
	Err error
}

// Error implements error.
func (e *UpstreamError) Error() string {
	s := e.Kind.Error() + ": upstream " + e.Upstream
	if e.Target != "" {
		s += " target " + e.Target
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the error kind and the cause.
func (e *UpstreamError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Classify maps an error returned by Upstream.Do to the HTTP status and the
// error code the gateway writes (see the product contract, section 5):
// 504 "gateway_timeout", 503 "unavailable" or 502 "bad_gateway". A nil error
// yields (0, "").
func Classify(err error) (status int, code string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, ErrTimeout), isTimeout(err):
		return fasthttp.StatusGatewayTimeout, "gateway_timeout"
	case errors.Is(err, ErrUnavailable), errors.Is(err, fasthttp.ErrNoFreeConns):
		return fasthttp.StatusServiceUnavailable, "unavailable"
	default:
		return fasthttp.StatusBadGateway, "bad_gateway"
	}
}

// isTimeout reports whether err is a timeout from fasthttp, the net package
// or a passed deadline.
func isTimeout(err error) bool {
	if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connectError marks a failure to establish a connection to a target: the
// dial or the TLS handshake failed, so no request byte was sent.
type connectError struct {
	err error
}

func (e *connectError) Error() string { return "connect: " + e.err.Error() }

func (e *connectError) Unwrap() error { return e.err }

// isConnectError reports whether err happened before any request byte was
// sent to the target.
func isConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}
