package config

import (
	"strings"
	"testing"
)

const tracingBase = `
upstreams:
  u: { targets: ["http://127.0.0.1:9002"] }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: u
`

func TestTracingDefaults(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantNil     bool
		wantRatio   float64
		wantService string
		wantQuery   bool
	}{
		{name: "absent", give: "", wantNil: true},
		{name: "endpoint only", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318\" }", wantRatio: 1, wantService: "gatewayd"},
		{name: "explicit zero ratio", give: "tracing: { otlp_endpoint: \"grpc://127.0.0.1:4317\", sample_ratio: 0, service_name: edge }", wantRatio: 0, wantService: "edge"},
		{name: "ratio", give: "tracing: { otlp_endpoint: \"https://collector.example:4318/otlp/v1/traces\", sample_ratio: 0.25 }", wantRatio: 0.25, wantService: "gatewayd"},
		{name: "query logging", give: "log: { access_log_query: true }", wantNil: true, wantQuery: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte(tt.give+tracingBase))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Log.AccessLogQuery != tt.wantQuery {
				t.Errorf("access_log_query = %v", cfg.Log.AccessLogQuery)
			}
			if tt.wantNil {
				if cfg.Tracing != nil {
					t.Fatalf("tracing = %+v, want nil", cfg.Tracing)
				}
				return
			}
			if cfg.Tracing.SampleRatio != tt.wantRatio || cfg.Tracing.ServiceName != tt.wantService {
				t.Errorf("ratio %v service %q, want %v %q", cfg.Tracing.SampleRatio, cfg.Tracing.ServiceName, tt.wantRatio, tt.wantService)
			}
		})
	}
}

func TestTracingErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "missing endpoint", give: "tracing: { sample_ratio: 0.5 }", want: "t.yaml:2: tracing.otlp_endpoint: required"},
		{name: "scheme", give: "tracing: { otlp_endpoint: \"tcp://127.0.0.1:4317\" }", want: "t.yaml:2: tracing.otlp_endpoint: expected an http://"},
		{name: "no host", give: "tracing: { otlp_endpoint: \"http:///v1/traces\" }", want: "tracing.otlp_endpoint: expected a URL"},
		{name: "query redacted", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318/?key=s3cret\" }", want: `got "http://127.0.0.1:4318/?redacted"`},
		{name: "grpc path", give: "tracing: { otlp_endpoint: \"grpc://127.0.0.1:4317/x\" }", want: "an OTLP/gRPC endpoint has no path"},
		{name: "ratio", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 1.01 }", want: "tracing.sample_ratio: must be between 0 and 1, got 1.01"},
		{name: "not a number", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: half }", want: `tracing.sample_ratio: expected a number, got "half"`},
		{name: "header value", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", headers: { x-key: \"a\\nb\" } }", want: "tracing.headers.x-key: the value must not contain CR, LF or NUL"},
		{name: "typo", give: "tracing: { otlp_endpoint: \"http://127.0.0.1:4318\", sample_rate: 1 }", want: `tracing.sample_rate: unknown field "sample_rate" (did you mean "sample_ratio"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("\n"+tt.give+tracingBase))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}
