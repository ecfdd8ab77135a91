package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
	"gopkg.in/yaml.v3"
)

// manifest is one Kubernetes object, decoded loosely.
type manifest struct {
	File string
	Doc  map[string]any
	// Sources maps each data key of a ConfigMap that kustomization.yaml
	// generates to the file it comes from.
	Sources map[string]string
}

// source names where a data key of m comes from, for messages.
func (m manifest) source(key string) string {
	if f, ok := m.Sources[key]; ok {
		return f
	}
	return m.File + ": data." + key
}

func (m manifest) kind() string { return str(m.Doc["kind"]) }

func (m manifest) name() string { return str(get(m.Doc, "metadata", "name")) }

// get walks nested maps (and list indexes given as int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	n, _ := v.(int)
	return n
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// loadManifests parses every document of every .yaml file in deploy/k8s.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc == nil {
				continue
			}
			out = append(out, manifest{File: f, Doc: doc})
		}
	}
	return out
}

func splitListen(t *testing.T, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return host, port
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// seconds converts a config duration to whole seconds, rounded up.
func seconds(d config.Duration) int {
	return int((d.D() + time.Second - 1) / time.Second)
}

// k8sSet is the parsed manifests, by kind and name.
type k8sSet struct {
	all  []manifest
	byID map[string]manifest // "Kind/name"
}

func loadK8s(t *testing.T) k8sSet {
	t.Helper()
	s := k8sSet{all: loadManifests(t), byID: map[string]manifest{}}
	for _, m := range s.all {
		if m.kind() == "Kustomization" {
			s.all = append(s.all, generatedConfigMaps(t, m)...)
		}
	}
	for _, m := range s.all {
		id := m.kind() + "/" + m.name()
		if _, dup := s.byID[id]; dup {
			t.Fatalf("%s is defined twice", id)
		}
		s.byID[id] = m
	}
	return s
}

// generatedConfigMaps builds the ConfigMaps of the kustomization's
// configMapGenerator as kustomize does (one data key per file, named after
// it), minus the hash suffix that kustomize appends to the name.
func generatedConfigMaps(t *testing.T, k manifest) []manifest {
	t.Helper()
	var out []manifest
	for _, g := range list(k.Doc["configMapGenerator"]) {
		cm := manifest{File: k.File, Sources: map[string]string{}, Doc: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": get(g, "name"), "labels": get(g, "options", "labels")},
		}}
		data := map[string]any{}
		for _, f := range list(get(g, "files")) {
			path := filepath.Join(filepath.Dir(k.File), str(f))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s: configMapGenerator: %v", k.File, err)
			}
			data[filepath.Base(path)] = string(b)
			cm.Sources[filepath.Base(path)] = path
		}
		cm.Doc["data"] = data
		out = append(out, cm)
	}
	return out
}

func (s k8sSet) must(t *testing.T, id string) manifest {
	t.Helper()
	m, ok := s.byID[id]
	if !ok {
		t.Fatalf("deploy/k8s has no %s (have %v)", id, keysOf(s.byID))
	}
	return m
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestK8sManifestsParse(t *testing.T) {
	s := loadK8s(t)
	want := []string{
		"ConfigMap/gatewayd-config", "Deployment/gatewayd", "Kustomization/",
		"PodDisruptionBudget/gatewayd", "Secret/gatewayd-secrets", "Service/gatewayd", "Service/gatewayd-admin",
	}
	if got := keysOf(s.byID); !slices.Equal(got, want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}
	for _, m := range s.all {
		if str(m.Doc["apiVersion"]) == "" {
			t.Errorf("%s: %s has no apiVersion", m.File, m.kind())
		}
		if ns := get(m.Doc, "metadata", "namespace"); ns != nil {
			t.Errorf("%s: %s/%s sets namespace %v: the manifests are namespace-less", m.File, m.kind(), m.name(), ns)
		}
	}
	// The kustomization lists every other file, once (the generated
	// ConfigMap's File is the kustomization itself).
	k := s.must(t, "Kustomization/")
	var listed []string
	for _, r := range list(k.Doc["resources"]) {
		listed = append(listed, str(r))
	}
	sort.Strings(listed)
	var files []string
	for _, m := range s.all {
		if b := filepath.Base(m.File); b != "kustomization.yaml" && !slices.Contains(files, b) {
			files = append(files, b)
		}
	}
	sort.Strings(files)
	if !slices.Equal(listed, files) {
		t.Errorf("kustomization.yaml resources = %v, want %v", listed, files)
	}
}

// gatewayConfig is the Deployment's gateway.yaml, checked like
// `gatewayd -check` with every ${VAR} set.
func gatewayConfig(t *testing.T, s k8sSet) (*config.Config, string) {
	t.Helper()
	cm := s.must(t, "ConfigMap/gatewayd-config")
	data := str(get(cm.Doc, "data", "gateway.yaml"))
	if data == "" {
		t.Fatal("ConfigMap gatewayd-config has no gateway.yaml")
	}
	for _, v := range envRefs(data) {
		t.Setenv(v, "KasnYZQT392eRfR7gTifmbP5d7EnwBEMgpdVAb76sIbdXMOf")
	}
	name := cm.source("gateway.yaml")
	cfg, err := config.Parse(name, []byte(data))
	if err := gateway.Check(cfg, err, builtin.Registry()); err != nil {
		t.Fatalf("%s does not pass gatewayd -check:\n%v", name, err)
	}
	return cfg, data
}

func TestK8sConfigMapGatewayYAML(t *testing.T) {
	s := loadK8s(t)
	cfg, data := gatewayConfig(t, s)
	if cfg.Redis == nil {
		t.Fatal("gateway.yaml has no redis: section: two replicas would each keep their own limits and revocations")
	}
	for _, a := range cfg.Redis.Addrs {
		host, _ := splitListen(t, a)
		if isLoopback(host) || net.ParseIP(host) != nil {
			t.Errorf("redis.addrs %q: want a Service name, not an address", a)
		}
	}
	if host, _ := splitListen(t, cfg.Admin.Listen); isLoopback(host) {
		t.Errorf("admin.listen %q: the kubelet's probes cannot reach a loopback address", cfg.Admin.Listen)
	}
	// Every ${VAR} without a default comes from the Secret.
	secret := s.must(t, "Secret/gatewayd-secrets")
	for _, v := range envRefs(data) {
		if get(secret.Doc, "stringData", v) == nil {
			t.Errorf("gateway.yaml uses ${%s}, which Secret gatewayd-secrets does not define", v)
		}
	}
}

// TestK8sSecretPlaceholderRefused makes sure the shipped placeholder can
// never run: gatewayd must refuse it as a JWT secret.
func TestK8sSecretPlaceholderRefused(t *testing.T) {
	s := loadK8s(t)
	cm := s.must(t, "ConfigMap/gatewayd-config")
	secret := s.must(t, "Secret/gatewayd-secrets")
	if str(secret.Doc["type"]) != "Opaque" {
		t.Errorf("Secret type %v, want Opaque", secret.Doc["type"])
	}
	for _, k := range []string{"JWT_SECRET", "REDIS_PASSWORD"} {
		v := str(get(secret.Doc, "stringData", k))
		if v == "" || !strings.Contains(v, "REPLACE") {
			t.Errorf("Secret stringData.%s = %q, want an obvious placeholder", k, v)
		}
		t.Setenv(k, v)
	}
	name := cm.source("gateway.yaml")
	cfg, err := config.Parse(name, []byte(str(get(cm.Doc, "data", "gateway.yaml"))))
	err = gateway.Check(cfg, err, builtin.Registry())
	if err == nil || !strings.Contains(err.Error(), "auth.secret: must be at least 32 bytes") {
		t.Fatalf("gateway.yaml with the placeholder JWT_SECRET: err = %v, want the secret refused", err)
	}
}

// TestK8sConfigMapAuthYAML checks auth.yaml with the real authd and that it
// holds the same auth: and redis: sections as gateway.yaml.
func TestK8sConfigMapAuthYAML(t *testing.T) {
	if testing.Short() {
		t.Skip("builds authd; skipped with -short")
	}
	s := loadK8s(t)
	cm := s.must(t, "ConfigMap/gatewayd-config")
	authData := str(get(cm.Doc, "data", "auth.yaml"))
	gwData := str(get(cm.Doc, "data", "gateway.yaml"))
	var auth, gw map[string]any
	if err := yaml.Unmarshal([]byte(authData), &auth); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(gwData), &gw); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"auth", "redis"} {
		a, _ := yaml.Marshal(auth[section])
		g, _ := yaml.Marshal(gw[section])
		if !bytes.Equal(a, g) {
			t.Errorf("auth.yaml and gateway.yaml differ in %s:\n%s\nvs\n%s", section, a, g)
		}
	}
	path := filepath.Join(t.TempDir(), "auth.yaml")
	if err := os.WriteFile(path, []byte(authData), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"JWT_SECRET=KasnYZQT392eRfR7gTifmbP5d7EnwBEMgpdVAb76sIbdXMOf", "REDIS_PASSWORD=x"}
	cmd := gatewaytest.Binary(t, "authd")
	out, err := execOutput(cmd, env, "-check", "-config", path)
	if err != nil || !strings.Contains(out, "configuration OK") {
		t.Fatalf("authd -check auth.yaml: %v\n%s", err, out)
	}
}

func TestK8sDeployment(t *testing.T) {
	s := loadK8s(t)
	cfg, _ := gatewayConfig(t, s)
	checkDeployment(t, s, cfg)
}

// checkDeployment checks the Deployment gatewayd of s against its
// configuration cfg; the Helm chart's rendering passes the same checks.
func checkDeployment(t *testing.T, s k8sSet, cfg *config.Config) {
	t.Helper()
	d := s.must(t, "Deployment/gatewayd")
	spec := get(d.Doc, "spec", "template", "spec")
	if r := num(get(d.Doc, "spec", "replicas")); r != 2 {
		t.Errorf("replicas = %d, want 2", r)
	}
	containers := list(get(spec, "containers"))
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]

	// Ports, and the listeners they must match.
	ports := map[string]int{}
	for _, p := range list(get(c, "ports")) {
		ports[str(get(p, "name"))] = num(get(p, "containerPort"))
	}
	if _, port := splitListen(t, cfg.Listen); port != itoa(ports["http"]) {
		t.Errorf("containerPort http = %d, gateway.yaml listen = %q", ports["http"], cfg.Listen)
	}
	if _, port := splitListen(t, cfg.Admin.Listen); port != itoa(ports["admin"]) || ports["admin"] != 9901 {
		t.Errorf("containerPort admin = %d, gateway.yaml admin.listen = %q", ports["admin"], cfg.Admin.Listen)
	}

	// Probes on the admin port.
	probes := []struct {
		giveProbe string
		wantPath  string
	}{
		{giveProbe: "readinessProbe", wantPath: "/readyz"},
		{giveProbe: "livenessProbe", wantPath: "/healthz"},
	}
	for _, tt := range probes {
		t.Run(tt.giveProbe, func(t *testing.T) {
			hg := get(c, tt.giveProbe, "httpGet")
			if hg == nil {
				t.Fatalf("no %s.httpGet", tt.giveProbe)
			}
			if got := str(get(hg, "path")); got != tt.wantPath {
				t.Errorf("path = %q, want %q", got, tt.wantPath)
			}
			port := get(hg, "port")
			if name, ok := port.(string); ok {
				port = ports[name]
			}
			if port != 9901 {
				t.Errorf("port = %v, want the admin port 9901", get(hg, "port"))
			}
		})
	}

	// Shutdown arithmetic against gateway.yaml.
	preStop := num(get(c, "lifecycle", "preStop", "sleep", "seconds"))
	delay, timeout := seconds(cfg.Server.ShutdownDelay), seconds(cfg.Server.ShutdownTimeout)
	if preStop == 0 || preStop != delay {
		t.Errorf("preStop sleep = %ds, want server.shutdown_delay = %ds", preStop, delay)
	}
	grace := num(get(spec, "terminationGracePeriodSeconds"))
	if grace <= preStop+delay+timeout {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than preStop %d + shutdown_delay %d + shutdown_timeout %d",
			grace, preStop, delay, timeout)
	}

	// Security.
	if get(spec, "securityContext", "runAsNonRoot") != true && get(c, "securityContext", "runAsNonRoot") != true {
		t.Error("runAsNonRoot is not set")
	}
	if uid := get(spec, "securityContext", "runAsUser"); uid == 0 {
		t.Error("runAsUser is 0")
	}
	sc := get(c, "securityContext")
	if get(sc, "readOnlyRootFilesystem") != true {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if get(sc, "allowPrivilegeEscalation") != false {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if drop := list(get(sc, "capabilities", "drop")); !slices.Contains(drop, any("ALL")) {
		t.Errorf("capabilities.drop = %v, want ALL", drop)
	}
	for _, r := range []string{"requests/cpu", "requests/memory", "limits/memory"} {
		a, b, _ := strings.Cut(r, "/")
		if get(c, "resources", a, b) == nil {
			t.Errorf("resources.%s.%s is not set", a, b)
		}
	}

	// The -config file is the mounted ConfigMap key; secrets come from the Secret.
	args := list(get(c, "args"))
	i := slices.Index(args, any("-config"))
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v lack -config FILE", args)
	}
	file := str(args[i+1])
	var volume string
	for _, vm := range list(get(c, "volumeMounts")) {
		if str(get(vm, "mountPath")) == filepath.Dir(file) {
			volume = str(get(vm, "name"))
			if get(vm, "subPath") != nil {
				t.Error("the config volume uses subPath: updates to the ConfigMap would never reach the pod")
			}
		}
	}
	var cmName string
	for _, v := range list(get(spec, "volumes")) {
		if str(get(v, "name")) == volume {
			cmName = str(get(v, "configMap", "name"))
		}
	}
	if cmName != "gatewayd-config" {
		t.Errorf("%s is not mounted from ConfigMap gatewayd-config (volume %q -> %q)", file, volume, cmName)
	}
	if get(s.must(t, "ConfigMap/gatewayd-config").Doc, "data", filepath.Base(file)) == nil {
		t.Errorf("ConfigMap gatewayd-config has no key %s", filepath.Base(file))
	}
	var fromSecret bool
	for _, e := range list(get(c, "envFrom")) {
		fromSecret = fromSecret || str(get(e, "secretRef", "name")) == "gatewayd-secrets"
	}
	for _, e := range list(get(c, "env")) {
		fromSecret = fromSecret || str(get(e, "valueFrom", "secretKeyRef", "name")) == "gatewayd-secrets"
	}
	if !fromSecret {
		t.Error("the container does not take its environment from Secret gatewayd-secrets")
	}
}

func TestK8sServicesAndPDB(t *testing.T) {
	checkServicesAndPDB(t, loadK8s(t))
}

// checkServicesAndPDB checks that the Services and the PodDisruptionBudget
// of s select the Deployment's pods and ports.
func checkServicesAndPDB(t *testing.T, s k8sSet) {
	t.Helper()
	d := s.must(t, "Deployment/gatewayd")
	podLabels, _ := get(d.Doc, "spec", "template", "metadata", "labels").(map[string]any)
	if sel, _ := get(d.Doc, "spec", "selector", "matchLabels").(map[string]any); !subset(sel, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", sel, podLabels)
	}
	portNames := map[string]bool{}
	for _, p := range list(get(d.Doc, "spec", "template", "spec", "containers", 0, "ports")) {
		portNames[str(get(p, "name"))] = true
	}
	tests := []struct {
		giveService    string
		wantTargetPort string
	}{
		{giveService: "Service/gatewayd", wantTargetPort: "http"},
		{giveService: "Service/gatewayd-admin", wantTargetPort: "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.giveService, func(t *testing.T) {
			svc := s.must(t, tt.giveService)
			sel, _ := get(svc.Doc, "spec", "selector").(map[string]any)
			if len(sel) == 0 || !subset(sel, podLabels) {
				t.Errorf("selector %v does not select the pods %v", sel, podLabels)
			}
			ps := list(get(svc.Doc, "spec", "ports"))
			if len(ps) != 1 || get(ps[0], "targetPort") != tt.wantTargetPort || !portNames[tt.wantTargetPort] {
				t.Errorf("ports %v, want one port to the container port %q", ps, tt.wantTargetPort)
			}
		})
	}
	pdb := s.must(t, "PodDisruptionBudget/gatewayd")
	if sel, _ := get(pdb.Doc, "spec", "selector", "matchLabels").(map[string]any); len(sel) == 0 || !subset(sel, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", sel)
	}
	if m := num(get(pdb.Doc, "spec", "minAvailable")); m < 1 || m >= num(get(d.Doc, "spec", "replicas")) {
		t.Errorf("PodDisruptionBudget minAvailable = %d: want at least 1 and fewer than the replicas, or drains block", m)
	}
}

func subset(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// execOutput runs bin with args and extra environment, returning its
// combined output.
func execOutput(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kustomizeBuild renders the kustomization in dir with kubectl.
func kustomizeBuild(t *testing.T, kubectl, dir string) []map[string]any {
	t.Helper()
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("kubectl kustomize: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var docs []map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	return docs
}

// configMapRefs returns the name of the rendered ConfigMap generated as
// gatewayd-config and the ConfigMap names the Deployment's volumes use.
func configMapRefs(docs []map[string]any) (generated string, used []string) {
	for _, doc := range docs {
		switch str(doc["kind"]) {
		case "ConfigMap":
			if n := str(get(doc, "metadata", "name")); strings.HasPrefix(n, "gatewayd-config-") {
				generated = n
			}
		case "Deployment":
			for _, v := range list(get(doc, "spec", "template", "spec", "volumes")) {
				if n := str(get(v, "configMap", "name")); n != "" {
					used = append(used, n)
				}
			}
		}
	}
	return generated, used
}

// TestK8sKustomizeBuild renders the kustomization with kubectl when it is
// installed: every object comes out, with the common label added and still
// without a namespace; the ConfigMap's name carries a hash of its content,
// which the Deployment refers to, so a change to the configuration rolls
// the pods.
func TestK8sKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not found: kustomization.yaml is checked by TestK8sManifestsParse only")
	}
	docs := kustomizeBuild(t, kubectl, "k8s")
	hashed := regexp.MustCompile(`^(gatewayd-config)-[a-z0-9]{10}$`)
	var got []string
	for _, doc := range docs {
		name := str(get(doc, "metadata", "name"))
		id := str(doc["kind"]) + "/" + name
		if m := hashed.FindStringSubmatch(name); m != nil && str(doc["kind"]) == "ConfigMap" {
			id = "ConfigMap/" + m[1]
		}
		got = append(got, id)
		if get(doc, "metadata", "labels", "app.kubernetes.io/part-of") != "gatewayd" {
			t.Errorf("%s lacks the label app.kubernetes.io/part-of=gatewayd", id)
		}
		if get(doc, "metadata", "namespace") != nil {
			t.Errorf("%s has a namespace", id)
		}
	}
	sort.Strings(got)
	wantIDs := []string{"ConfigMap/gatewayd-config", "Deployment/gatewayd", "PodDisruptionBudget/gatewayd",
		"Secret/gatewayd-secrets", "Service/gatewayd", "Service/gatewayd-admin"}
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("kustomize output = %v, want %v (the ConfigMap with a hash suffix)", got, wantIDs)
	}
	generated, used := configMapRefs(docs)
	if !slices.Equal(used, []string{generated}) {
		t.Fatalf("the Deployment mounts ConfigMaps %v, want the generated %s", used, generated)
	}
	// What the other tests check (loadK8s) is what kustomize renders.
	want := get(loadK8s(t).must(t, "ConfigMap/gatewayd-config").Doc, "data")
	for _, doc := range docs {
		if str(get(doc, "metadata", "name")) == generated && !reflect.DeepEqual(doc["data"], want) {
			t.Errorf("rendered ConfigMap data differs from the files of configMapGenerator")
		}
	}

	// The same content gives the same name; any change to a file gives a
	// new one, and the Deployment follows it.
	dir := t.TempDir()
	for _, f := range []string{"kustomization.yaml", "secret.yaml", "deployment.yaml", "service.yaml", "pdb.yaml",
		"config/gateway.yaml", "config/auth.yaml"} {
		b, err := os.ReadFile(filepath.Join("k8s", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if again, _ := configMapRefs(kustomizeBuild(t, kubectl, dir)); again != generated {
		t.Fatalf("the same files render as ConfigMap %s, then %s", generated, again)
	}
	for _, f := range []string{"config/gateway.yaml", "config/auth.yaml"} {
		path := filepath.Join(dir, f)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, "# changed\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		changed, used := configMapRefs(kustomizeBuild(t, kubectl, dir))
		if changed == generated || !slices.Equal(used, []string{changed}) {
			t.Errorf("after a change to %s: ConfigMap %s (before %s), mounted %v", f, changed, generated, used)
		}
		generated = changed
	}
}
