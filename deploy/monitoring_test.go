package deploy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/testpki"

	"github.com/gatewayd/gatewayd/internal/echo"
	"github.com/gatewayd/gatewayd/internal/gatewaytest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

const (
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
	dashboardFile  = "grafana/gatewayd.json"
)

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var rules []alertRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", alertsFile)
	}
	return rules
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install it to validate the alert rules (Debian/Ubuntu: apt-get install -y prometheus; or download it from https://prometheus.io/download/)")
	}
	return p
}

func TestAlertRulesPromtoolCheck(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "check", "rules", alertsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool check rules did not report success:\n%s", out)
	}
}

func TestAlertRulesPromtoolUnitTests(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "test", "rules", alertTestsFile).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", alertTestsFile, err, out)
	}
	// The unit tests must cover at least these alerts, firing.
	data, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	firing := map[string]bool{}
	for _, tc := range f.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			}
		}
	}
	for _, name := range []string{"GatewayHighErrorRate", "GatewayConfigReloadFailed"} {
		if !firing[name] {
			t.Errorf("%s has no promtool test case in which %s fires", alertTestsFile, name)
		}
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ' || r == '-':
			b.WriteByte('-')
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	anchors := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "#") {
			anchors[githubAnchor(strings.TrimLeft(line, "#"))] = true
		}
	}
	return anchors
}

func TestAlertRulesShape(t *testing.T) {
	rules := loadAlertRules(t)
	anchors := readmeAnchors(t)
	const runbookBase = "https://github.com/gatewayd/gatewayd/blob/main/deploy/README.md#"
	byName := map[string]alertRule{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert", r.Record)
			continue
		}
		if _, dup := byName[r.Alert]; dup {
			t.Errorf("alert %s is defined twice", r.Alert)
		}
		byName[r.Alert] = r
		if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("%s: severity label %q, want critical, warning or info", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: annotation %s is missing", r.Alert, a)
			}
		}
		anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
		if !ok || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q does not point at a heading of deploy/README.md", r.Alert, r.Annotations["runbook_url"])
		}
	}
	// What each alert must watch.
	tests := []struct {
		giveAlert    string
		wantFor      string
		wantContains []string
	}{
		{giveAlert: "GatewayHighErrorRate", wantFor: "5m", wantContains: []string{`http_requests_total{status_code=~"5.."}`, "> 0.01"}},
		{giveAlert: "GatewayHighLatencyP95", wantContains: []string{"histogram_quantile(0.95", "http_request_duration_seconds_bucket", "> 0.5"}},
		{giveAlert: "GatewayTrafficDrop", wantContains: []string{"offset 1h", "0.5 *"}},
		{giveAlert: "GatewayConfigReloadFailed", wantContains: []string{`increase(gateway_config_reloads_total{result="failure"}`}},
		{giveAlert: "GatewayStoreErrors", wantContains: []string{"gateway_store_errors_total"}},
		{giveAlert: "GatewayRateLimitRejectionSpike", wantContains: []string{"gateway_ratelimit_rejected_total"}},
		{giveAlert: "GatewayUpstreamTargetDown", wantContains: []string{"gateway_upstream_target_healthy == 0"}},
		{giveAlert: "GatewayUpstreamAllTargetsDown", wantContains: []string{"gateway_upstream_target_healthy"}},
		{giveAlert: "GatewayUpstreamErrors", wantFor: "10m", wantContains: []string{`gateway_upstream_requests_total{code_class=~"5xx|error"}`, "> 0.05"}},
		{giveAlert: "GatewayTLSCertificateExpiringSoon", wantContains: []string{"gateway_tls_certificate_expiry_seconds", "< 14 * 86400"}},
		{giveAlert: "GatewayJWKSNoKeys", wantFor: "5m", wantContains: []string{"gateway_jwks_keys == 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.giveAlert, func(t *testing.T) {
			r, ok := byName[tt.giveAlert]
			if !ok {
				t.Fatalf("alert %s is missing", tt.giveAlert)
			}
			if tt.wantFor != "" && r.For != tt.wantFor {
				t.Errorf("for = %q, want %q", r.For, tt.wantFor)
			}
			for _, s := range tt.wantContains {
				if !strings.Contains(r.Expr, s) {
					t.Errorf("expr does not contain %q:\n%s", s, r.Expr)
				}
			}
		})
	}
}

// dashboard is the part of a Grafana dashboard model the checks read.
type dashboard struct {
	UID         string `json:"uid"`
	Title       string `json:"title"`
	Annotations struct {
		List []struct {
			Name       string         `json:"name"`
			Datasource map[string]any `json:"datasource"`
			Expr       string         `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Datasource map[string]any `json:"datasource"`
			Query      any            `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Repeat     string         `json:"repeat"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Datasource map[string]any `json:"datasource"`
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// promExpr is one PromQL expression of the monitoring assets, with where it
// comes from.
type promExpr struct {
	Where string
	Info  exprInfo
	// Panel is set for dashboard panel queries and annotations, which must
	// honour the dashboard's variables.
	Panel bool
}

// monitoringExprs returns every PromQL expression of the alert rules and the
// dashboard (panels, annotations and variable queries).
func monitoringExprs(t *testing.T) []promExpr {
	t.Helper()
	var out []promExpr
	for _, r := range loadAlertRules(t) {
		info, err := parsePromQL(r.Expr)
		if err != nil {
			t.Fatalf("%s: alert %s: %v", alertsFile, r.Alert, err)
		}
		out = append(out, promExpr{Where: alertsFile + ": alert " + r.Alert, Info: info})
	}
	d := loadDashboard(t)
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			if isLogs(tg.Datasource) {
				continue // LogQL: TestDashboardSlowRequests checks it
			}
			info, err := parsePromQL(tg.Expr)
			if err != nil {
				t.Fatalf("%s: panel %q: %v", dashboardFile, p.Title, err)
			}
			out = append(out, promExpr{Where: fmt.Sprintf("%s: panel %q query %s", dashboardFile, p.Title, tg.RefID), Info: info, Panel: true})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr == "" {
			continue
		}
		info, err := parsePromQL(a.Expr)
		if err != nil {
			t.Fatalf("%s: annotation %q: %v", dashboardFile, a.Name, err)
		}
		out = append(out, promExpr{Where: fmt.Sprintf("%s: annotation %q", dashboardFile, a.Name), Info: info, Panel: true})
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := ""
		switch x := v.Query.(type) {
		case string:
			q = x
		case map[string]any:
			q, _ = x["query"].(string)
		}
		info, err := parseVariableQuery(q)
		if err != nil {
			t.Fatalf("%s: variable %s: %v", dashboardFile, v.Name, err)
		}
		out = append(out, promExpr{Where: fmt.Sprintf("%s: variable %s", dashboardFile, v.Name), Info: info})
	}
	return out
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both are needed for provisioning", d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && fmt.Sprint(v.Datasource["uid"]) != "${datasource}" {
			t.Errorf("variable %s: datasource %v, want the ${datasource} variable", v.Name, v.Datasource)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "job": "query", "instance": "query", "route": "query", "upstream": "query",
		"logs": "datasource", "log_selector": "textbox", "slow_seconds": "textbox", "tracing_url": "textbox"} {
		if vars[name] != typ {
			t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" && fmt.Sprint(a.Datasource["uid"]) != "${datasource}" {
			t.Errorf("annotation %q: datasource %v, want the ${datasource} variable", a.Name, a.Datasource)
		}
	}
	ids := map[int]string{}
	for _, p := range allPanels(d.Panels) {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: grid position %+v does not fit the 24-column grid", p.Title, p.GridPos)
		}
		if p.Repeat != "" && vars[p.Repeat] == "" {
			t.Errorf("panel %q repeats over unknown variable %q", p.Title, p.Repeat)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		wantDS := "${datasource}"
		if isLogs(p.Datasource) {
			wantDS = "${logs}"
		}
		if fmt.Sprint(p.Datasource["uid"]) != wantDS {
			t.Errorf("panel %q: datasource %v, want the %s variable", p.Title, p.Datasource, wantDS)
		}
		for _, tg := range p.Targets {
			if fmt.Sprint(tg.Datasource["uid"]) != wantDS {
				t.Errorf("panel %q query %s: datasource %v, want the %s variable", p.Title, tg.RefID, tg.Datasource, wantDS)
			}
		}
	}
	// What the dashboard must show.
	var all strings.Builder
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	for _, want := range []string{
		"rate(http_requests_total", `status_code=~"5.."`,
		"histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket",
		"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket",
		"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket",
		"gateway_upstream_duration_seconds_bucket", "sum by (reason) (rate(gateway_auth_rejected_total",
		"gateway_ratelimit_rejected_total", "gateway_inflight_requests", "gateway_config_reloads_total",
		"gateway_store_errors_total", "gateway_build_info",
		"sum by (upstream, code_class) (rate(gateway_upstream_requests_total",
		"sum by (upstream) (rate(gateway_upstream_retries_total",
		"rate(http_response_size_bytes_sum", "rate(http_response_size_bytes_bucket",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no panel query contains %q", want)
		}
	}
}

// scrape is a parsed Prometheus text exposition: the label sets of every
// sample name.
type scrape map[string][]map[string]string

// parseScrape parses the Prometheus text format (no TYPE lines needed).
func parseScrape(text string) (scrape, error) {
	sc := scrape{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			return nil, fmt.Errorf("line %d: no metric name: %q", n+1, line)
		}
		name := line[:end]
		labels := map[string]string{}
		if line[end] == '{' {
			rest := line[end+1:]
			for {
				rest = strings.TrimLeft(rest, " ,")
				if strings.HasPrefix(rest, "}") {
					break
				}
				eq := strings.Index(rest, `="`)
				if eq <= 0 {
					return nil, fmt.Errorf("line %d: bad labels: %q", n+1, line)
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var v strings.Builder
				i := 0
				for ; i < len(rest) && rest[i] != '"'; i++ {
					if rest[i] == '\\' && i+1 < len(rest) {
						i++
					}
					v.WriteByte(rest[i])
				}
				if i >= len(rest) {
					return nil, fmt.Errorf("line %d: unterminated label value: %q", n+1, line)
				}
				labels[key] = v.String()
				rest = rest[i+1:]
			}
		}
		sc[name] = append(sc[name], labels)
	}
	return sc, nil
}

// isHistogram reports whether family is a classic Prometheus histogram in
// the scrape: _bucket samples with le, plus _sum and _count.
func (sc scrape) isHistogram(family string) bool {
	buckets := sc[family+"_bucket"]
	if len(buckets) == 0 || len(sc[family+"_sum"]) == 0 || len(sc[family+"_count"]) == 0 {
		return false
	}
	for _, l := range buckets {
		if _, ok := l["le"]; !ok {
			return false
		}
	}
	return true
}

// resolve checks that a metric name used in PromQL is a series the scrape
// has: a plain sample name, or a _bucket/_sum/_count of a histogram. A
// histogram's bare family name selects nothing.
func (sc scrape) resolve(name string) error {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && sc.isHistogram(base) {
			return nil
		}
	}
	if len(sc[name]) > 0 {
		if strings.HasSuffix(name, "_bucket") {
			return fmt.Errorf("%s has samples but its family is not a histogram (no le label, _sum or _count)", name)
		}
		return nil
	}
	if sc.isHistogram(name) {
		return fmt.Errorf("%s is a histogram: select %[1]s_bucket, %[1]s_sum or %[1]s_count", name)
	}
	return fmt.Errorf("%s is not exported", name)
}

// labelNames returns the label names a sample name carries.
func (sc scrape) labelNames(name string) map[string]bool {
	out := map[string]bool{}
	for _, l := range sc[name] {
		for k := range l {
			out[k] = true
		}
	}
	return out
}

// hasValue reports whether some sample of name has label = value.
func (sc scrape) hasValue(name, label, value string) bool {
	for _, l := range sc[name] {
		if l[label] == value {
			return true
		}
	}
	return false
}

// notExportedHere are metrics the dashboard shows that this build does not
// export yet, with their labels and the reason; their selectors are
// checked against those labels, and every other metric must be in the
// scrape. Empty while every metric the dashboard shows is exported.
var notExportedHere = map[string]struct {
	labels []string
	why    string
}{}

// targetLabels are added by Prometheus at scrape time.
var targetLabels = map[string]bool{"job": true, "instance": true}

// scrapeConfig is the gateway the monitoring assets are checked against:
// one route with jwt, blacklist and ratelimit, one without plugins, an echo
// upstream. %[1]s is the upstream address, %[2]s the JWT secret.
const scrapeConfig = `
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: warn, access_log: false }
tls: { certificates: [{ cert_file: "%[4]s", key_file: "%[5]s" }] }
upstreams:
  echo: { targets: ["http://%[1]s"] }
plugins:
  auth-jwt: { type: jwt, algorithms: [HS256], secret: "%[2]s", issuer: deploy-test, audience: api }
  # The echo server is no key server: the provider never gets keys.
  idp-jwt: { type: jwt, providers: [{ issuer: "https://idp.example.com/", jwks_url: "http://%[1]s/jwks", algorithms: [RS256] }] }
routes:
  - name: api
    match: { path_prefix: /api/ }
    upstream: echo
    plugins: [request-id, auth-jwt, blacklist, { ratelimit: { key: user, limit: 1, period: 1m } }]
  - name: public
    match: { path_prefix: /public/ }
    upstream: echo
%[3]s`

// scrapeCertificate writes a certificate for 127.0.0.1 and its key, and
// returns them with a pool that trusts their CA.
func scrapeCertificate(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	ca := testpki.NewCA(t, "deploy-test CA")
	leaf := ca.Server(t, []string{"127.0.0.1"})
	dir := t.TempDir()
	return testpki.WriteFile(t, dir, "cert.pem", leaf.CertPEM), testpki.WriteFile(t, dir, "key.pem", leaf.KeyPEM), ca.Pool()
}

func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: echo.Handler("deploy-test")}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

func request(t *testing.T, c *http.Client, method, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestMonitoringMetricsExported runs the real gatewayd, produces the series
// that only exist after an event (each status class, an auth rejection, a
// rate-limit rejection, a successful and a failed reload), scrapes /metrics
// and checks every metric and label the alert rules and the dashboard name.
func TestMonitoringMetricsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gatewayd; skipped with -short")
	}
	exprs := monitoringExprs(t)

	secret := "8mwrnq_BlKAxLWBlObN6_lDvE4myvl9jCMIoZ0bcyvJIWKUC"
	upstream := startEcho(t)
	// Served over TLS, so that the certificate expiry series exists.
	certFile, keyFile, roots := scrapeCertificate(t)
	cfg := fmt.Sprintf(scrapeConfig, upstream, secret, "", certFile, keyFile)
	gw := gatewaytest.Start(t, cfg)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	now := time.Now()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u-1", "typ": "access", "iss": "deploy-test", "aud": "api", "jti": "j-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		givePath   string
		giveToken  string
		wantStatus int
	}{
		{name: "ok", givePath: "/public/x", wantStatus: 200},
		{name: "upstream error", givePath: "/public/x?status=503", wantStatus: 503},
		{name: "no token", givePath: "/api/x", wantStatus: 401},
		{name: "token", givePath: "/api/x", giveToken: token, wantStatus: 200},
		{name: "over the limit", givePath: "/api/x", giveToken: token, wantStatus: 429},
		{name: "no route", givePath: "/nothing", wantStatus: 404},
	}
	for _, st := range steps {
		if got := request(t, c, "GET", "https://"+gw.Addr+st.givePath, st.giveToken); got != st.wantStatus {
			t.Fatalf("%s: GET %s = %d, want %d", st.name, st.givePath, got, st.wantStatus)
		}
	}

	// A successful reload, then a rejected one: both result series exist.
	gw.WriteConfig(fmt.Sprintf(scrapeConfig, upstream, secret, "  - name: extra\n    match: { path: /extra }\n    upstream: echo\n", certFile, keyFile))
	if got := request(t, c, "POST", gw.AdminURL("/-/reload"), ""); got != 200 {
		t.Fatalf("valid reload = %d, want 200", got)
	}
	if err := os.WriteFile(gw.ConfigPath, []byte("version: 1\nroutes: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := request(t, c, "POST", gw.AdminURL("/-/reload"), ""); got != 400 {
		t.Fatalf("broken reload = %d, want 400", got)
	}

	resp, err := c.Get(gw.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := parseScrape(string(body))
	if err != nil {
		t.Fatal(err)
	}

	checked := map[string]bool{}
	for _, e := range exprs {
		known := map[string]bool{}
		for k := range targetLabels {
			known[k] = true
		}
		for _, sel := range e.Info.Selectors {
			if err := sc.resolve(sel.Metric); err != nil {
				if pending, ok := notExportedHere[sel.Metric]; ok {
					t.Logf("%s: %s not in the scrape: %s", e.Where, sel.Metric, pending.why)
					labels := map[string]bool{}
					for _, l := range pending.labels {
						labels[l], known[l] = true, true
					}
					for _, m := range sel.Matchers {
						if !labels[m.Label] && !targetLabels[m.Label] {
							t.Errorf("%s: %s has no label %q (it has %v)", e.Where, sel.Metric, m.Label, pending.labels)
						}
					}
					if e.Panel {
						checkVariables(t, e.Where, sel, labels)
					}
					continue
				}
				t.Errorf("%s: %v", e.Where, err)
				continue
			}
			checked[sel.Metric] = true
			labels := sc.labelNames(sel.Metric)
			for l := range labels {
				known[l] = true
			}
			for _, m := range sel.Matchers {
				if !labels[m.Label] && !targetLabels[m.Label] {
					t.Errorf("%s: %s has no label %q (it has %v)", e.Where, sel.Metric, m.Label, keys(labels))
					continue
				}
				// An exact value must be one the gateway really writes.
				if m.Op == "=" && !strings.Contains(m.Value, "$") && !targetLabels[m.Label] && !sc.hasValue(sel.Metric, m.Label, m.Value) {
					t.Errorf("%s: no %s sample has %s=%q", e.Where, sel.Metric, m.Label, m.Value)
				}
			}
			if e.Panel {
				checkVariables(t, e.Where, sel, labels)
			}
		}
		for _, l := range e.Info.Grouping {
			if !known[l] {
				t.Errorf("%s: groups by %q, a label none of its metrics has", e.Where, l)
			}
		}
	}
	t.Logf("checked %d metric names against the scrape: %v", len(checked), keys(checked))
}

// checkVariables requires a dashboard selector to honour the job and
// instance variables, and the route and upstream variables when the metric
// has those labels.
func checkVariables(t *testing.T, where string, sel selector, labels map[string]bool) {
	t.Helper()
	want := map[string]string{"job": "$job", "instance": "$instance"}
	if labels["route"] {
		want["route"] = "$route"
	}
	if labels["upstream"] {
		want["upstream"] = "$upstream"
	}
	for label, v := range want {
		if !slices.Contains(sel.Matchers, matcher{Label: label, Op: "=~", Value: v}) {
			t.Errorf("%s: %s does not filter on %s=~%q", where, sel.Metric, label, v)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestParseScrape(t *testing.T) {
	sc, err := parseScrape(`# HELP ignored
h_bucket{route="a",le="0.5"} 1
h_bucket{route="a",le="+Inf"} 2
h_sum{route="a"} 0.7
h_count{route="a"} 2
c_total{msg="x\"y, z",op="ping"} 3
g 1
s_count 2
s_sum 1
`)
	if err != nil {
		t.Fatal(err)
	}
	if !sc.hasValue("c_total", "msg", `x"y, z`) || !sc.hasValue("c_total", "op", "ping") {
		t.Fatalf("labels not parsed: %v", sc["c_total"])
	}
	tests := []struct {
		give    string
		wantErr string
	}{
		{give: "h_bucket"},
		{give: "h_sum"},
		{give: "h_count"},
		{give: "c_total"},
		{give: "g"},
		{give: "s_count"},
		{give: "h", wantErr: "is a histogram"},
		{give: "c_total_count", wantErr: "not exported"},
		{give: "missing_total", wantErr: "not exported"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			err := sc.resolve(tt.give)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("resolve = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// moduleRoot is the repository root (the tests run in deploy/).
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above deploy/: %v", err)
	}
	return root
}

var envRefRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envRefs returns the ${VAR} references without a default in a config file.
func envRefs(data string) []string {
	var out []string
	for _, m := range envRefRe.FindAllStringSubmatch(data, -1) {
		if m[2] == "" && !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}
