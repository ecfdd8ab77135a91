package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/pkg/config"
	"gopkg.in/yaml.v3"
)

// maxSignupsPerHour bounds what a sample configuration lets one client IP
// sign up: each signup costs a bcrypt hash (0.2-0.4 CPU-second at cost 12).
const (
	maxSignupsPerHour = 10
	maxSignupBurst    = 5
)

// signupLimit is the part of a ratelimit entry the check reads.
type signupLimit struct {
	Type   string          `yaml:"type"`
	Key    string          `yaml:"key"`
	Limit  int             `yaml:"limit"`
	Period config.Duration `yaml:"period"`
	Burst  int             `yaml:"burst"`
}

// TestSampleConfigsLimitSignup checks that every shipped gateway
// configuration answers POST /v1/auth/signup on a route of its own (an
// exact path beats the /v1/auth/ prefix) with a per-IP ratelimit of at most
// maxSignupsPerHour, burst at most maxSignupBurst.
func TestSampleConfigsLimitSignup(t *testing.T) {
	files, err := filepath.Glob("../configs/gateway*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample configurations: %v", err)
	}
	files = append(files, "docker/gateway.yaml")
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range envRefs(string(data)) {
				t.Setenv(v, "KasnYZQT392eRfR7gTifmbP5d7EnwBEMgpdVAb76sIbdXMOf")
			}
			cfg, err := config.Parse(file, data)
			if err != nil {
				t.Fatal(err)
			}
			checkSignupLimit(t, cfg)
		})
	}
	t.Run("k8s/config/gateway.yaml", func(t *testing.T) {
		cfg, _ := gatewayConfig(t, loadK8s(t))
		checkSignupLimit(t, cfg)
	})
}

func checkSignupLimit(t *testing.T, cfg *config.Config) {
	t.Helper()
	var route *config.Route
	for _, r := range cfg.Routes {
		m := r.Match
		if m.Path == "/v1/auth/signup" && (len(m.Methods) == 0 || slices.Contains(m.Methods, "POST")) {
			route = r
			break
		}
	}
	if route == nil {
		t.Fatal("no route of its own for POST /v1/auth/signup: it falls to the general /v1/auth/ limit")
	}
	if route.Upstream != config.BuiltinAuth {
		t.Fatalf("route %s goes to %q, want %s", route.Name, route.Upstream, config.BuiltinAuth)
	}
	var limits []signupLimit
	for _, n := range route.Plugins {
		var l signupLimit
		switch {
		case n.Kind == yaml.ScalarNode && cfg.Plugins[n.Value] != nil:
			if err := cfg.Plugins[n.Value].Decode(&l); err != nil || l.Type != "ratelimit" {
				continue
			}
		case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "ratelimit":
			if err := n.Content[1].Decode(&l); err != nil {
				t.Fatal(err)
			}
		default:
			continue
		}
		limits = append(limits, l)
	}
	for _, l := range limits {
		if l.Key != "ip" || l.Limit < 1 || l.Period.D() <= 0 {
			continue
		}
		perHour := float64(l.Limit) * float64(time.Hour) / float64(l.Period.D())
		burst := l.Burst
		if burst == 0 {
			burst = l.Limit
		}
		if perHour <= maxSignupsPerHour && burst <= maxSignupBurst {
			return
		}
		t.Fatalf("route %s: %d per %s (%.0f an hour), burst %d; want at most %d an hour, burst %d",
			route.Name, l.Limit, l.Period, perHour, burst, maxSignupsPerHour, maxSignupBurst)
	}
	t.Fatalf("route %s has no per-IP ratelimit (plugins %d)", route.Name, len(route.Plugins))
}
