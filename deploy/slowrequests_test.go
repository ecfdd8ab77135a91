package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatewayd/gatewayd/internal/gatewaytest"
)

// isLogs reports whether a panel or query datasource is the Loki data
// source variable: its queries are LogQL over the access log.
func isLogs(ds map[string]any) bool { return fmt.Sprint(ds["type"]) == "loki" }

// slowRequestsPanel is the part of the slow requests table the tests read.
type slowRequestsPanel struct {
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		Datasource map[string]any `json:"datasource"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
	Transformations []struct {
		ID      string         `json:"id"`
		Options map[string]any `json:"options"`
	} `json:"transformations"`
	FieldConfig struct {
		Overrides []struct {
			Matcher    struct{ ID, Options string } `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
}

// loadSlowRequestsPanel returns the dashboard's LogQL panel.
func loadSlowRequestsPanel(t *testing.T) slowRequestsPanel {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	var found []slowRequestsPanel
	for _, raw := range d.Panels {
		var p slowRequestsPanel
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		if isLogs(p.Datasource) {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d panels on the logs data source, want the slow requests table", dashboardFile, len(found))
	}
	return found[0]
}

// logqlFields are the access log fields the slow requests query filters on.
var logqlFields = regexp.MustCompile(`\|\s*([a-z_]+)\s*(?:=|!=|>=|>|<=|<)`)

// TestDashboardSlowRequestsLinkToTraces checks the slow requests table: a
// LogQL query over the access log that keeps slow requests with a trace
// id, and a data link from the trace_id column to ${tracing_url}.
func TestDashboardSlowRequestsLinkToTraces(t *testing.T) {
	p := loadSlowRequestsPanel(t)
	if len(p.Targets) != 1 {
		t.Fatalf("panel %q: %d queries, want 1", p.Title, len(p.Targets))
	}
	expr := p.Targets[0].Expr
	for _, want := range []string{"$log_selector", "| json", `logger="access"`, "duration >= $slow_seconds", `trace_id != ""`} {
		if !strings.Contains(expr, want) {
			t.Errorf("panel %q: query %q lacks %q", p.Title, expr, want)
		}
	}
	link := ""
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID != "byName" || o.Matcher.Options != "trace_id" {
			continue
		}
		for _, prop := range o.Properties {
			if prop.ID != "links" {
				continue
			}
			var links []struct{ Title, URL string }
			if err := json.Unmarshal(prop.Value, &links); err != nil {
				t.Fatal(err)
			}
			for _, l := range links {
				link = l.URL
			}
		}
	}
	if link != "${tracing_url}/${__value.raw}" {
		t.Errorf("panel %q: trace_id link %q, want ${tracing_url}/${__value.raw}", p.Title, link)
	}
	// The fields come out of the log line's labels, one column each.
	extracts := false
	for _, tr := range p.Transformations {
		if tr.ID == "extractFields" && tr.Options["source"] == "labels" {
			extracts = true
		}
	}
	if !extracts {
		t.Errorf("panel %q: no extractFields transformation from the labels", p.Title)
	}
}

// TestSlowRequestsQueryMatchesAccessLog runs gatewayd with the access log
// on and checks that its lines have the fields the slow requests query
// filters on and the table shows, with the types the query needs.
func TestSlowRequestsQueryMatchesAccessLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs gatewayd; skipped with -short")
	}
	p := loadSlowRequestsPanel(t)
	gw := gatewaytest.Start(t, fmt.Sprintf(`
version: 1
listen: "{{LISTEN}}"
admin: { listen: "{{ADMIN}}" }
log: { level: info, format: json, access_log: true }
upstreams:
  echo: { targets: ["http://%s"] }
routes:
  - name: public
    match: { path_prefix: /public/ }
    upstream: echo
`, startEcho(t)))
	if got := request(t, &http.Client{Timeout: 10 * time.Second}, "GET", gw.URL("/public/slow"), ""); got != 200 {
		t.Fatalf("GET /public/slow = %d", got)
	}
	if !gw.WaitLog(`"path":"/public/slow"`, 5*time.Second) {
		t.Fatalf("no access log line:\n%s", gw.Logs())
	}
	var line map[string]any
	for _, l := range strings.Split(gw.Logs(), "\n") {
		if strings.Contains(l, `"path":"/public/slow"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("access log line is not JSON: %v\n%s", err, l)
			}
		}
	}
	if line["logger"] != "access" {
		t.Errorf(`access log line has logger %v, the query keeps logger="access"`, line["logger"])
	}
	if _, ok := line["duration"].(float64); !ok {
		t.Errorf("access log duration %v is not a number of seconds, which duration >= $slow_seconds compares", line["duration"])
	}
	fields := map[string]bool{}
	for _, m := range logqlFields.FindAllStringSubmatch(p.Targets[0].Expr, -1) {
		fields[m[1]] = true
	}
	for _, tr := range p.Transformations {
		if tr.ID != "filterFieldsByName" {
			continue
		}
		include, _ := tr.Options["include"].(map[string]any)
		names, _ := include["names"].([]any)
		for _, n := range names {
			if s := n.(string); s != "Time" {
				fields[s] = true
			}
		}
	}
	if len(fields) < 5 {
		t.Fatalf("found only %d fields in the panel: %v", len(fields), fields)
	}
	for f := range fields {
		if _, ok := line[f]; !ok {
			t.Errorf("the slow requests panel uses field %q, which the access log line lacks: %v", f, line)
		}
	}
}
