package tracing

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatewayd/gatewayd/pkg/config"
)

// InstrumentationName names the gateway's tracer (the instrumentation
// scope of its spans).
const InstrumentationName = "github.com/gatewayd/gatewayd"

// exportTimeout bounds one export request to the collector.
const exportTimeout = 10 * time.Second

// Tracer records the spans of sampled requests and exports them with OTLP.
// It is safe for concurrent use.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	// threshold: a new trace is sampled when a uniform 64-bit draw is
	// below it (MaxUint64 with ratio 1, 0 with ratio 0).
	threshold uint64
	always    bool
	endpoint  string
}

// Options carry what New needs besides the tracing: section.
type Options struct {
	// Version is the service.version resource attribute.
	Version string
	// Exporter, when set, replaces the OTLP exporter (tests).
	Exporter sdktrace.SpanExporter
}

// New builds the exporter and the tracer provider of cfg. Nothing is
// dialled yet: the exporter connects on its first export, and failed
// exports are reported through the OpenTelemetry error handler.
func New(cfg *config.Tracing, opts Options) (*Tracer, error) {
	exp := opts.Exporter
	if exp == nil {
		var err error
		if exp, err = newExporter(cfg); err != nil {
			return nil, err
		}
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if opts.Version != "" {
		attrs = append(attrs, attribute.String("service.version", opts.Version))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		// The gateway decides (see Tracer.Sample) before it starts a span:
		// a span is only started for a request that is sampled.
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	t := &Tracer{
		provider: tp,
		tracer:   tp.Tracer(InstrumentationName, trace.WithInstrumentationVersion(opts.Version)),
		endpoint: config.RedactURL(cfg.OTLPEndpoint),
	}
	switch r := cfg.SampleRatio; {
	case r >= 1:
		t.always = true
	case r > 0:
		t.threshold = uint64(r * math.MaxUint64)
	}
	return t, nil
}

// Endpoint returns the collector's URL, redacted for logs.
func (t *Tracer) Endpoint() string { return t.endpoint }

// SampleNew decides whether a request that starts a new trace (no valid
// traceparent) is sampled, with the configured ratio.
func (t *Tracer) SampleNew() bool {
	return t.always || rand.Uint64() < t.threshold
}

// Tracer returns the OpenTelemetry tracer spans are started with.
func (t *Tracer) Tracer() trace.Tracer { return t.tracer }

// Shutdown exports the spans still queued and stops the exporter, within
// ctx's deadline.
func (t *Tracer) Shutdown(ctx context.Context) error {
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports the spans queued so far.
func (t *Tracer) ForceFlush(ctx context.Context) error {
	return t.provider.ForceFlush(ctx)
}

// RemoteContext returns ctx carrying parent, a span context received from a
// client, with its tracestate (an invalid tracestate is dropped, as W3C
// Trace Context asks).
func RemoteContext(ctx context.Context, parent SpanContext, tracestate []byte) context.Context {
	cfg := trace.SpanContextConfig{
		TraceID:    parent.TraceID,
		SpanID:     parent.SpanID,
		TraceFlags: trace.TraceFlags(parent.Flags),
		Remote:     true,
	}
	if len(tracestate) > 0 {
		if ts, err := trace.ParseTraceState(string(tracestate)); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(cfg))
}

// Of returns the ids and flags of an OpenTelemetry span context.
func Of(sc trace.SpanContext) SpanContext {
	return SpanContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

// newExporter builds the OTLP exporter cfg.OTLPEndpoint names: http(s)://
// for OTLP/HTTP (protobuf; the path defaults to /v1/traces), grpc:// or
// grpcs:// for OTLP/gRPC. Credentials in the URL become a Basic
// Authorization header.
func newExporter(cfg *config.Tracing) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(cfg.OTLPEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tracing: invalid otlp_endpoint %q", config.RedactURL(cfg.OTLPEndpoint))
	}
	headers := make(map[string]string, len(cfg.Headers)+1)
	for k, v := range cfg.Headers {
		headers[k] = v
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass))
	}
	switch u.Scheme = strings.ToLower(u.Scheme); u.Scheme {
	case "http", "https", "grpc", "grpcs":
		return newOTLPExporter(u, headers, exportTimeout), nil
	}
	return nil, errors.New("tracing: otlp_endpoint must be an http://, https://, grpc:// or grpcs:// URL, got " + config.RedactURL(cfg.OTLPEndpoint))
}
