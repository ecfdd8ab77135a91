package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// TestGatewayConfigsAreValid checks each mode's configuration with the
// build gatewayd -check runs.
func TestGatewayConfigsAreValid(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"exact", "lease"} {
		t.Run(mode, func(t *testing.T) {
			src := gatewayYAML(o, mode, 8080, 9901, "127.0.0.1:6379", "127.0.0.1:9")
			if !strings.Contains(src, "sync: "+mode) {
				t.Fatalf("configuration lacks sync: %s:\n%s", mode, src)
			}
			cfg, err := config.Parse(mode+".yaml", []byte(src))
			if err := gateway.Check(cfg, err, builtin.Registry()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-limit", "50", "-period", "1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.burst != 50 || o.rps != 4*50/60.0 || o.duration != 60*time.Second || o.instances != 3 {
		t.Fatalf("defaults %+v", o)
	}
	if mb := maxBatch(o); mb != 1 {
		t.Fatalf("max batch %d for 50/min, want 1 (leased a token at a time)", mb)
	}
	if _, err := parseFlags([]string{"-modes", "exact,leese"}, io.Discard); err == nil {
		t.Fatal("an unknown mode was accepted")
	}
}
