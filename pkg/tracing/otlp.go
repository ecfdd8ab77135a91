package tracing

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// grpcExportPath is the gRPC method of OTLP trace export.
const grpcExportPath = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// maxResponseBytes bounds the collector's response body read.
const maxResponseBytes = 64 << 10

// Retry backoff between export attempts: from retryInitial, doubling up to
// retryMax, with jitter; the attempts of one export stop at its deadline.
const (
	retryInitial = 100 * time.Millisecond
	retryMax     = 5 * time.Second
)

var errShutdown = errors.New("tracing: exporter is shut down")

// otlpExporter is an sdktrace.SpanExporter that sends spans to an OTLP
// collector: OTLP/HTTP (protobuf) or OTLP/gRPC, both over net/http (gRPC as
// an HTTP/2 POST of the length-prefixed message, its status in the
// trailers). An export that fails with what OTLP calls a retryable error
// (HTTP 429, 502, 503, 504; gRPC UNAVAILABLE, RESOURCE_EXHAUSTED and the
// like) is sent again with backoff, honouring Retry-After, until the
// export's deadline (exportTimeout at most).
type otlpExporter struct {
	client  *http.Client
	url     string
	grpc    bool
	headers http.Header
	timeout time.Duration

	// last is the size of the previous request body: the next one's
	// buffer starts at it. A body is not reused: the transport may still
	// be writing it after Do returns (an early answer from the collector).
	last atomic.Int64
	shut atomic.Bool
}

var _ sdktrace.SpanExporter = (*otlpExporter)(nil)

// newOTLPExporter returns the exporter of u (parsed otlp_endpoint, scheme
// lower-case): http/https post to u's path (default /v1/traces),
// grpc/grpcs call TraceService/Export on u's host.
func newOTLPExporter(u *url.URL, headers map[string]string, timeout time.Duration) *otlpExporter {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
	}
	e := &otlpExporter{client: &http.Client{Transport: tr}, headers: make(http.Header, len(headers)+2), timeout: timeout}
	e.headers.Set("User-Agent", "gatewayd")
	for k, v := range headers {
		e.headers.Set(k, v)
	}
	target := url.URL{Scheme: "http", Host: u.Host}
	switch u.Scheme {
	case "http", "https":
		target.Scheme = u.Scheme
		target.Path = u.Path
		if target.Path == "" || target.Path == "/" {
			target.Path = "/v1/traces"
		}
		e.headers.Set("Content-Type", "application/x-protobuf")
	case "grpc", "grpcs":
		// gRPC needs HTTP/2: with TLS through ALPN, in plain text with
		// prior knowledge (h2c).
		e.grpc = true
		var p http.Protocols
		if u.Scheme == "grpcs" {
			target.Scheme = "https"
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		tr.Protocols = &p
		tr.Proxy = nil
		target.Path = grpcExportPath
		e.headers.Set("Content-Type", "application/grpc")
		e.headers.Set("Te", "trailers")
	}
	e.url = target.String()
	return e
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.shut.Load() {
		return errShutdown
	}
	if len(spans) == 0 {
		return nil
	}
	b := make([]byte, 0, e.last.Load())
	if e.grpc {
		// The gRPC message prefix: not compressed, then the length.
		b = append(b, 0, 0, 0, 0, 0)
	}
	b = appendRequest(b, spans)
	if e.grpc {
		binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	}
	e.last.Store(int64(len(b)))

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	backoff := retryInitial
	for {
		wait, err := e.send(ctx, b)
		if err == nil {
			return nil
		}
		if wait < 0 {
			return err
		}
		if wait == 0 {
			// Full jitter around the backoff, then the next one doubles.
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, retryMax)
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return fmt.Errorf("%w (no time left to retry)", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%w while waiting to retry)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// send makes one export attempt. On failure, wait says what to do: -1
// give up (not retryable), 0 retry after the backoff, > 0 retry after
// that long (the collector's Retry-After).
func (e *otlpExporter) send(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header = e.headers.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		err = fmt.Errorf("tracing: export to %s: %w", e.url, err)
		// A certificate the client does not trust stays untrusted: only
		// the configuration can fix it. Connection refused, reset,
		// timeouts: the collector may come back.
		var verr *tls.CertificateVerificationError
		if ctx.Err() != nil || errors.As(err, &verr) {
			return -1, err
		}
		return 0, err
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if e.grpc {
		return e.grpcResult(resp, data, rerr)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if rerr == nil {
			reportPartial(partialSuccess(data))
		}
		return 0, nil
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return retryAfter(resp.Header), fmt.Errorf("tracing: export to %s: collector answered %s", e.url, resp.Status)
	default:
		return -1, fmt.Errorf("tracing: export to %s: collector answered %s: %s", e.url, resp.Status, errorMessage(resp.Header.Get("Content-Type"), data))
	}
}

// grpcResult reads the outcome of a gRPC export: the grpc-status of the
// trailers (or, in a trailers-only answer, of the headers).
func (e *otlpExporter) grpcResult(resp *http.Response, data []byte, rerr error) (time.Duration, error) {
	if resp.StatusCode != http.StatusOK {
		// Not a gRPC answer: a proxy in between, or no gRPC server.
		err := fmt.Errorf("tracing: export to %s (gRPC): HTTP %s", e.url, resp.Status)
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return retryAfter(resp.Header), err
		}
		return -1, err
	}
	if rerr != nil {
		return 0, fmt.Errorf("tracing: export to %s (gRPC): reading the answer: %w", e.url, rerr)
	}
	status := resp.Trailer.Get("Grpc-Status")
	msg := resp.Trailer.Get("Grpc-Message")
	if status == "" {
		status, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	code, err := strconv.Atoi(status)
	if err != nil {
		return 0, fmt.Errorf("tracing: export to %s (gRPC): answer without a grpc-status", e.url)
	}
	if code == 0 {
		// The response message follows its 5-byte prefix.
		if len(data) >= 5 && data[0] == 0 {
			if n := binary.BigEndian.Uint32(data[1:5]); int(n) == len(data)-5 {
				reportPartial(partialSuccess(data[5:]))
			}
		}
		return 0, nil
	}
	if m, uerr := url.PathUnescape(msg); uerr == nil {
		msg = m
	}
	err = fmt.Errorf("tracing: export to %s (gRPC): status %s: %s", e.url, grpcCodeName(code), msg)
	if grpcRetryable(code) {
		return 0, err
	}
	return -1, err
}

// Shutdown implements sdktrace.SpanExporter: exports after it fail, and
// idle connections to the collector are closed.
func (e *otlpExporter) Shutdown(context.Context) error {
	e.shut.Store(true)
	e.client.CloseIdleConnections()
	return nil
}

// reportPartial reports spans the collector accepted the request for but
// rejected, through the OpenTelemetry error handler (the gateway logs it).
func reportPartial(rejected int64, msg string) {
	if rejected > 0 || msg != "" {
		otel.Handle(fmt.Errorf("tracing: the collector rejected %d spans: %s", rejected, msg))
	}
}

// retryAfter is the wait a Retry-After header of seconds asks for, or 0.
func retryAfter(h http.Header) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

// gRPC status codes OTLP retries (the OTLP specification's "retryable"
// list).
func grpcRetryable(code int) bool {
	switch code {
	case 1, 4, 8, 10, 11, 14, 15: // CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS
		return true
	}
	return false
}

var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

func grpcCodeName(code int) string {
	if code >= 0 && code < len(grpcCodeNames) {
		return grpcCodeNames[code]
	}
	return strconv.Itoa(code)
}

// errorMessage is what an OTLP/HTTP error answer says: the message of
// the google.rpc.Status it carries in protobuf, or the start of its text.
func errorMessage(contentType string, b []byte) string {
	if strings.HasPrefix(contentType, "application/x-protobuf") {
		return rpcStatusMessage(b)
	}
	const limit = 200
	s := strings.TrimSpace(string(b))
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
