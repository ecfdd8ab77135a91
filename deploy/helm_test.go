package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"gopkg.in/yaml.v3"
)

const (
	chartDir = "helm/gatewayd"
	// helmInstall is how .ci/run installs helm; the tests print it when
	// helm is missing.
	helmInstall = "GOFLAGS=-mod=mod go install helm.sh/helm/v3/cmd/helm@v3.16.4"
	// The release name the tests render with: it contains the chart's
	// name, so the objects are named as in deploy/k8s.
	helmRelease = "gatewayd"
)

// helmBin returns the helm binary, or skips the test.
func helmBin(t *testing.T) string {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		t.Skipf("helm not found: the chart in deploy/%s is not rendered. Install it with\n  %s\n(into $(go env GOPATH)/bin, which must be on PATH; .ci/run does it)", chartDir, helmInstall)
	}
	return helm
}

func runHelm(t *testing.T, helm string, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// helmTemplate renders the chart with extra helm arguments (--set, -f) into
// a k8sSet, so that the checks of the kustomize base apply to it.
func helmTemplate(t *testing.T, helm string, args ...string) k8sSet {
	t.Helper()
	out := runHelm(t, helm, append([]string{"template", helmRelease, chartDir}, args...)...)
	s := k8sSet{byID: map[string]manifest{}}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v\n%s", err, out)
		}
		if doc == nil {
			continue
		}
		m := manifest{File: chartDir, Doc: doc}
		id := m.kind() + "/" + m.name()
		if _, dup := s.byID[id]; dup {
			t.Fatalf("helm template renders %s twice", id)
		}
		s.all = append(s.all, m)
		s.byID[id] = m
	}
	return s
}

// valuesFile writes helm values to a temporary file for -f.
func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// chartValues is the chart's values.yaml.
func chartValues(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

var helmOptional = []string{"--set", "serviceMonitor.enabled=true", "--set", "autoscaling.enabled=true"}

func TestHelmLint(t *testing.T) {
	helm := helmBin(t)
	tests := []struct {
		name string
		args []string
	}{
		{name: "defaults"},
		{name: "serviceMonitor and autoscaling", args: helmOptional},
		{name: "existingSecret", args: []string{"--set", "secrets.existingSecret=gatewayd-secrets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runHelm(t, helm, append([]string{"lint", "--strict", chartDir}, tt.args...)...)
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint:\n%s", out)
			}
		})
	}
}

func TestHelmTemplateObjects(t *testing.T) {
	helm := helmBin(t)
	base := []string{"ConfigMap/gatewayd-config", "Deployment/gatewayd", "PodDisruptionBudget/gatewayd",
		"Secret/gatewayd-secrets", "Service/gatewayd", "Service/gatewayd-admin"}
	tests := []struct {
		name         string
		args         []string
		wantIDs      []string
		wantReplicas any
	}{
		{name: "defaults", wantIDs: base, wantReplicas: 2},
		{
			name:    "serviceMonitor and autoscaling",
			args:    helmOptional,
			wantIDs: sorted(append(slices.Clone(base), "HorizontalPodAutoscaler/gatewayd", "ServiceMonitor/gatewayd")),
			// The HPA owns the replica count; a replicas field would
			// reset it on every upgrade.
			wantReplicas: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := helmTemplate(t, helm, tt.args...)
			if got := keysOf(s.byID); !slices.Equal(got, tt.wantIDs) {
				t.Fatalf("objects = %v, want %v", got, tt.wantIDs)
			}
			for _, m := range s.all {
				if get(m.Doc, "metadata", "namespace") != nil {
					t.Errorf("%s/%s sets a namespace: helm's -n decides", m.kind(), m.name())
				}
				if get(m.Doc, "metadata", "labels", "app.kubernetes.io/part-of") != "gatewayd" {
					t.Errorf("%s/%s lacks the label app.kubernetes.io/part-of=gatewayd", m.kind(), m.name())
				}
			}
			d := s.must(t, "Deployment/gatewayd")
			if got := get(d.Doc, "spec", "replicas"); got != tt.wantReplicas {
				t.Errorf("replicas = %v, want %v", got, tt.wantReplicas)
			}
			if hpa, ok := s.byID["HorizontalPodAutoscaler/gatewayd"]; ok {
				if get(hpa.Doc, "spec", "scaleTargetRef", "name") != "gatewayd" || get(hpa.Doc, "spec", "scaleTargetRef", "kind") != "Deployment" {
					t.Errorf("HPA scaleTargetRef = %v", get(hpa.Doc, "spec", "scaleTargetRef"))
				}
				if minR := num(get(hpa.Doc, "spec", "minReplicas")); minR <= num(get(s.must(t, "PodDisruptionBudget/gatewayd").Doc, "spec", "minAvailable")) {
					t.Errorf("HPA minReplicas = %d: not above the PodDisruptionBudget's minAvailable, drains would block", minR)
				}
			}
			if sm, ok := s.byID["ServiceMonitor/gatewayd"]; ok {
				admin := s.must(t, "Service/gatewayd-admin")
				labels, _ := get(admin.Doc, "metadata", "labels").(map[string]any)
				if sel, _ := get(sm.Doc, "spec", "selector", "matchLabels").(map[string]any); !subset(sel, labels) {
					t.Errorf("ServiceMonitor selector %v does not select Service gatewayd-admin %v", sel, labels)
				}
				if client, _ := get(s.must(t, "Service/gatewayd").Doc, "metadata", "labels").(map[string]any); subset(get(sm.Doc, "spec", "selector", "matchLabels").(map[string]any), client) {
					t.Error("the ServiceMonitor also selects the client Service gatewayd")
				}
				ep := list(get(sm.Doc, "spec", "endpoints"))
				if len(ep) != 1 || get(ep[0], "port") != "admin" || get(ep[0], "path") != "/metrics" {
					t.Errorf("ServiceMonitor endpoints = %v, want port admin, path /metrics", ep)
				}
			}
		})
	}
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// TestHelmTemplateMirrorsKustomize renders the chart with its defaults and
// runs the checks of the kustomize base on the result: the configuration
// passes gatewayd -check, admin listener, probes, shutdown arithmetic,
// security context, resources, selectors. The rendered configuration and
// the Deployment's settings must also be those of deploy/k8s.
func TestHelmTemplateMirrorsKustomize(t *testing.T) {
	helm := helmBin(t)
	s := helmTemplate(t, helm)
	k := loadK8s(t)
	cfg, data := gatewayConfig(t, s)
	if host, port := splitListen(t, cfg.Admin.Listen); isLoopback(host) || port != "9901" {
		t.Errorf("admin.listen %q: the probes need port 9901 on the pod IP", cfg.Admin.Listen)
	}
	if cfg.Redis == nil {
		t.Error("the chart's config has no redis: section: replicas would each keep their own limits and revocations")
	}

	// The same configuration as deploy/k8s/config, comments aside.
	for _, key := range []string{"gateway.yaml", "auth.yaml"} {
		var chart, kust any
		if err := yaml.Unmarshal([]byte(str(get(s.must(t, "ConfigMap/gatewayd-config").Doc, "data", key))), &chart); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal([]byte(str(get(k.must(t, "ConfigMap/gatewayd-config").Doc, "data", key))), &kust); err != nil {
			t.Fatal(err)
		}
		if chart == nil || !reflect.DeepEqual(chart, kust) {
			t.Errorf("the chart's %s differs from deploy/k8s/config/%s", key, key)
		}
	}

	// The Deployment: every check of the kustomize base, then the same
	// settings field by field.
	t.Run("k8s checks", func(t *testing.T) {
		checkDeployment(t, s, cfg)
		checkServicesAndPDB(t, s)
	})
	hd, kd := s.must(t, "Deployment/gatewayd").Doc, k.must(t, "Deployment/gatewayd").Doc
	for _, path := range [][]any{
		{"spec", "replicas"},
		{"spec", "revisionHistoryLimit"},
		{"spec", "strategy"},
		{"spec", "template", "spec", "terminationGracePeriodSeconds"},
		{"spec", "template", "spec", "automountServiceAccountToken"},
		{"spec", "template", "spec", "securityContext"},
		{"spec", "template", "spec", "containers", 0, "args"},
		{"spec", "template", "spec", "containers", 0, "ports"},
		{"spec", "template", "spec", "containers", 0, "readinessProbe"},
		{"spec", "template", "spec", "containers", 0, "livenessProbe"},
		{"spec", "template", "spec", "containers", 0, "lifecycle"},
		{"spec", "template", "spec", "containers", 0, "resources"},
		{"spec", "template", "spec", "containers", 0, "securityContext"},
		{"spec", "template", "spec", "containers", 0, "volumeMounts"},
		{"spec", "template", "spec", "volumes", 1},
	} {
		if a, b := get(hd, path...), get(kd, path...); a == nil || !reflect.DeepEqual(a, b) {
			t.Errorf("Deployment %v: chart %v, deploy/k8s %v", path, a, b)
		}
	}
	for k, v := range get(kd, "spec", "template", "metadata", "annotations").(map[string]any) {
		if get(hd, "spec", "template", "metadata", "annotations", k) != v {
			t.Errorf("pod annotation %s: chart %v, deploy/k8s %v", k, get(hd, "spec", "template", "metadata", "annotations", k), v)
		}
	}
	if a, b := get(s.must(t, "PodDisruptionBudget/gatewayd").Doc, "spec", "minAvailable"), get(k.must(t, "PodDisruptionBudget/gatewayd").Doc, "spec", "minAvailable"); a != b {
		t.Errorf("PodDisruptionBudget minAvailable: chart %v, deploy/k8s %v", a, b)
	}

	// The real binary agrees with the in-process check.
	if testing.Short() {
		return
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"JWT_SECRET=KasnYZQT392eRfR7gTifmbP5d7EnwBEMgpdVAb76sIbdXMOf", "REDIS_PASSWORD=x"}
	out, err := execOutput(gatewaytest.Binary(t, "gatewayd"), env, "-check", "-config", path)
	if err != nil || !strings.Contains(out, "configuration OK") {
		t.Fatalf("gatewayd -check on the chart's rendered gateway.yaml: %v\n%s", err, out)
	}
}

// TestHelmSecretRefs checks that JWT_SECRET and REDIS_PASSWORD come from
// the chart's Secret, or from secrets.existingSecret (and then the chart
// creates none), and that every ${VAR} of the configuration is set.
func TestHelmSecretRefs(t *testing.T) {
	helm := helmBin(t)
	tests := []struct {
		name       string
		args       []string
		wantSecret string
		wantKeys   map[string]string
		wantOwn    bool
	}{
		{name: "chart's Secret", wantSecret: "gatewayd-secrets", wantOwn: true,
			wantKeys: map[string]string{"JWT_SECRET": "JWT_SECRET", "REDIS_PASSWORD": "REDIS_PASSWORD"}},
		{
			name: "existingSecret",
			args: []string{"--set", "secrets.existingSecret=prod-gw", "--set", "secrets.jwtSecretKey=jwt",
				"--set", "secrets.redisPasswordKey=redis"},
			wantSecret: "prod-gw",
			wantKeys:   map[string]string{"JWT_SECRET": "jwt", "REDIS_PASSWORD": "redis"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := helmTemplate(t, helm, tt.args...)
			c := get(s.must(t, "Deployment/gatewayd").Doc, "spec", "template", "spec", "containers", 0)
			got := map[string]string{}
			for _, e := range list(get(c, "env")) {
				ref := get(e, "valueFrom", "secretKeyRef")
				if ref == nil {
					t.Errorf("env %v is not taken from a Secret", get(e, "name"))
					continue
				}
				if n := str(get(ref, "name")); n != tt.wantSecret {
					t.Errorf("env %v from Secret %q, want %q", get(e, "name"), n, tt.wantSecret)
				}
				got[str(get(e, "name"))] = str(get(ref, "key"))
			}
			if !reflect.DeepEqual(got, tt.wantKeys) {
				t.Errorf("env from Secret keys %v, want %v", got, tt.wantKeys)
			}
			data := str(get(s.must(t, "ConfigMap/gatewayd-config").Doc, "data", "gateway.yaml"))
			for _, v := range envRefs(data) {
				if _, ok := got[v]; !ok {
					t.Errorf("gateway.yaml uses ${%s}, which the container's env does not set", v)
				}
			}
			secret, own := s.byID["Secret/"+tt.wantSecret]
			if own != tt.wantOwn {
				t.Fatalf("chart renders Secret %s: %v, want %v", tt.wantSecret, own, tt.wantOwn)
			}
			if own {
				var keys []string
				for k := range get(secret.Doc, "stringData").(map[string]any) {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				if want := []string{"JWT_SECRET", "REDIS_PASSWORD"}; !slices.Equal(keys, want) {
					t.Errorf("Secret keys %v, want %v", keys, want)
				}
			}
		})
	}
}

// TestHelmSecretPlaceholderRefused: with the default values the chart's
// Secret holds placeholders, and gatewayd refuses its JWT_SECRET, so a
// forgotten secret fails at start, as with deploy/k8s.
func TestHelmSecretPlaceholderRefused(t *testing.T) {
	helm := helmBin(t)
	s := helmTemplate(t, helm)
	secret := s.must(t, "Secret/gatewayd-secrets")
	for _, k := range []string{"JWT_SECRET", "REDIS_PASSWORD"} {
		v := str(get(secret.Doc, "stringData", k))
		if !strings.Contains(v, "REPLACE") {
			t.Errorf("Secret stringData.%s = %q, want an obvious placeholder", k, v)
		}
		t.Setenv(k, v)
	}
	data := str(get(s.must(t, "ConfigMap/gatewayd-config").Doc, "data", "gateway.yaml"))
	cfg, err := config.Parse(chartDir+": gateway.yaml", []byte(data))
	err = gateway.Check(cfg, err, builtin.Registry())
	if err == nil || !strings.Contains(err.Error(), "auth.secret: must be at least 32 bytes") {
		t.Fatalf("the chart's gateway.yaml with the placeholder JWT_SECRET: err = %v, want the secret refused", err)
	}
}

// TestHelmChecksumConfig: the pod template's checksum/config follows the
// rendered ConfigMap, so a config change rolls the pods and nothing else
// does.
func TestHelmChecksumConfig(t *testing.T) {
	helm := helmBin(t)
	checksum := func(args ...string) string {
		t.Helper()
		s := helmTemplate(t, helm, args...)
		sum := str(get(s.must(t, "Deployment/gatewayd").Doc, "spec", "template", "metadata", "annotations", "checksum/config"))
		if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			t.Fatalf("checksum/config = %q, want a sha256 in hex", sum)
		}
		return sum
	}
	config := str(chartValues(t)["config"])
	if config == "" {
		t.Fatal("values.yaml has no config")
	}
	authConfig := str(chartValues(t)["authConfig"])
	base := checksum()
	if again := checksum(); again != base {
		t.Fatalf("the same values give checksum %s, then %s", base, again)
	}
	if same := checksum("--set", "replicaCount=3", "--set", "image.tag=v1.2.3"); same != base {
		t.Errorf("replicaCount and image.tag changed checksum/config (%s -> %s)", base, same)
	}
	changed := checksum("-f", valuesFile(t, map[string]any{"config": config + "# changed\n"}))
	if changed == base {
		t.Error("a change to config left checksum/config unchanged: helm upgrade would not roll the pods")
	}
	if c := checksum("-f", valuesFile(t, map[string]any{"authConfig": authConfig + "# changed\n"})); c == base || c == changed {
		t.Error("a change to authConfig left checksum/config unchanged")
	}
}
