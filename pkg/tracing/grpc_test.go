package tracing

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// grpcCollector is an OTLP/gRPC trace receiver.
type grpcCollector struct {
	collectorpb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
	keys  []string
	got   chan struct{}
}

func (c *grpcCollector) Export(ctx context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.names = append(c.names, s.GetName())
			}
		}
	}
	c.keys = append(c.keys, md.Get("x-api-key")...)
	select {
	case c.got <- struct{}{}:
	default:
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// A grpc:// endpoint exports with OTLP/gRPC, headers as metadata.
func TestExportGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &grpcCollector{got: make(chan struct{}, 1)}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	tr, err := New(&config.Tracing{OTLPEndpoint: "grpc://" + ln.Addr().String(), SampleRatio: 1, ServiceName: "svc",
		Headers: map[string]string{"x-api-key": "k2"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(t.Context(), "grpc-op")
	span.End()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.got:
	case <-ctx.Done():
		t.Fatal("no export over gRPC")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.names) != 1 || c.names[0] != "grpc-op" || len(c.keys) != 1 || c.keys[0] != "k2" {
		t.Fatalf("spans %v, x-api-key %v", c.names, c.keys)
	}
}
