package deploy

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// matcher is one label matcher of a selector: route=~"$route".
type matcher struct {
	Label, Op, Value string
}

// selector is one vector selector of a PromQL expression.
type selector struct {
	Metric   string
	Matchers []matcher
}

// exprInfo is what the checks need from a PromQL expression: the series it
// selects and the label names its by/without/on/ignoring/group_* clauses
// name.
type exprInfo struct {
	Selectors []selector
	Grouping  []string
}

// Metrics returns the metric names of the selectors, in order.
func (e exprInfo) Metrics() []string {
	out := make([]string, 0, len(e.Selectors))
	for _, s := range e.Selectors {
		out = append(out, s.Metric)
	}
	return out
}

var (
	// groupingWords take a parenthesised list of label names.
	groupingWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	// keywords are identifiers that never name a metric: operators,
	// modifiers and the aggregations, which may be followed by a by/without
	// clause instead of their parenthesised argument.
	keywords = map[string]bool{
		"and": true, "or": true, "unless": true, "offset": true, "bool": true, "atan2": true, "inf": true, "nan": true,
		"sum": true, "avg": true, "min": true, "max": true, "count": true, "group": true, "stddev": true, "stdvar": true,
		"topk": true, "bottomk": true, "quantile": true, "count_values": true, "limitk": true, "limit_ratio": true,
	}
)

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parsePromQL finds the selectors of a PromQL expression. It is a lexer, not
// a full parser: enough to name every metric and label an expression uses,
// including Grafana variables ($route, ${datasource}, $__rate_interval) that
// a real PromQL parser would refuse.
func parsePromQL(expr string) (exprInfo, error) {
	var info exprInfo
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	readString := func() (string, error) {
		q := s[i]
		start := i
		i++
		var b strings.Builder
		for i < len(s) && s[i] != q {
			if s[i] == '\\' && q != '`' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated string at offset %d in %q", start, expr)
		}
		i++
		return b.String(), nil
	}
	readIdent := func() string {
		start := i
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		return s[start:i]
	}
	// readMatchers reads {label op "value", ...}; s[i] is '{'.
	readMatchers := func() ([]matcher, error) {
		var ms []matcher
		i++
		for {
			skipSpace()
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated selector in %q", expr)
			}
			if s[i] == '}' {
				i++
				return ms, nil
			}
			if s[i] == ',' {
				i++
				continue
			}
			if !isIdentStart(s[i]) {
				return nil, fmt.Errorf("unexpected %q in label matchers of %q", s[i], expr)
			}
			m := matcher{Label: readIdent()}
			skipSpace()
			for _, op := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(s[i:], op) {
					m.Op = op
					i += len(op)
					break
				}
			}
			if m.Op == "" {
				return nil, fmt.Errorf("label %s without an operator in %q", m.Label, expr)
			}
			skipSpace()
			if i >= len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '`') {
				return nil, fmt.Errorf("label %s without a quoted value in %q", m.Label, expr)
			}
			v, err := readString()
			if err != nil {
				return nil, err
			}
			m.Value = v
			ms = append(ms, m)
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return info, nil
		}
		c := s[i]
		switch {
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			if _, err := readString(); err != nil {
				return info, err
			}
		case c == '[':
			// A range or subquery: durations and Grafana interval variables.
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return info, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{':
			ms, err := readMatchers()
			if err != nil {
				return info, err
			}
			sel := selector{Matchers: ms}
			for _, m := range ms {
				if m.Label == "__name__" && m.Op == "=" {
					sel.Metric = m.Value
				}
			}
			if sel.Metric == "" {
				return info, fmt.Errorf("selector without a metric name in %q", expr)
			}
			info.Selectors = append(info.Selectors, sel)
		case c == '$':
			// A Grafana variable outside matchers and ranges: $name or ${name}.
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return info, fmt.Errorf("unterminated variable in %q", expr)
				}
				i += end + 1
			} else {
				readIdent()
			}
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			// A number or a duration (0.95, 1h, 5m30s).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			word := readIdent()
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case groupingWords[strings.ToLower(word)]:
				if next != '(' {
					continue
				}
				end := strings.IndexByte(s[i:], ')')
				if end < 0 {
					return info, fmt.Errorf("unterminated %s clause in %q", word, expr)
				}
				for _, l := range strings.Split(s[i+1:i+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						info.Grouping = append(info.Grouping, l)
					}
				}
				i += end + 1
			case next == '(':
				// A function or an aggregation; its arguments follow.
			case keywords[strings.ToLower(word)]:
			default:
				sel := selector{Metric: word}
				if next == '{' {
					ms, err := readMatchers()
					if err != nil {
						return info, err
					}
					sel.Matchers = ms
				}
				info.Selectors = append(info.Selectors, sel)
			}
		default:
			// Operators, parentheses, commas.
			i++
		}
	}
}

var (
	labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`)
	queryResultRe = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

// parseVariableQuery parses the query of a Grafana Prometheus variable:
// label_values(selector, label) or query_result(expr). The label becomes a
// grouping label, so it is checked like one.
func parseVariableQuery(q string) (exprInfo, error) {
	if m := labelValuesRe.FindStringSubmatch(q); m != nil {
		info, err := parsePromQL(m[1])
		info.Grouping = append(info.Grouping, m[2])
		return info, err
	}
	if m := queryResultRe.FindStringSubmatch(q); m != nil {
		return parsePromQL(m[1])
	}
	return exprInfo{}, fmt.Errorf("unsupported variable query %q (want label_values(selector, label) or query_result(expr))", q)
}

func TestParsePromQL(t *testing.T) {
	tests := []struct {
		give         string
		wantMetrics  []string
		wantGrouping []string
	}{
		{give: `up`, wantMetrics: []string{"up"}},
		{
			give:         `sum by (job) (rate(http_requests_total{status_code=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m])) > 0.01`,
			wantMetrics:  []string{"http_requests_total", "http_requests_total"},
			wantGrouping: []string{"job", "job"},
		},
		{
			give:         `histogram_quantile(0.95, sum by (job, route, le) (rate(http_request_duration_seconds_bucket{route=~"$route"}[$__rate_interval])))`,
			wantMetrics:  []string{"http_request_duration_seconds_bucket"},
			wantGrouping: []string{"job", "route", "le"},
		},
		{
			give:        `rate(x_total[10m] offset 1h) < 0.5 * rate(x_total[10m]) and on(job) y > bool 1`,
			wantMetrics: []string{"x_total", "x_total", "y"},
			wantGrouping: []string{
				"job",
			},
		},
		{
			give:        "a{l=\"}{,\"} unless ignoring (result) a{l='x'} offset 15m # a comment naming not_a_metric\n",
			wantMetrics: []string{"a", "a"},
			wantGrouping: []string{
				"result",
			},
		},
		{give: `time() - max(last_seconds{job=~"${job}"})`, wantMetrics: []string{"last_seconds"}},
		{give: `sum(rate(c_total[5m])) without (instance)`, wantMetrics: []string{"c_total"}, wantGrouping: []string{"instance"}},
		{give: `{__name__="named_total", job="x"}`, wantMetrics: []string{"named_total"}},
		{give: `label_replace(up, "dst", "$1", "src", "(.*)")`, wantMetrics: []string{"up"}},
		{give: `changes(t_seconds[2m]) > 0 or vector(0) * 1e3`, wantMetrics: []string{"t_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := parsePromQL(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metrics(), tt.wantMetrics) {
				t.Errorf("metrics = %q, want %q", got.Metrics(), tt.wantMetrics)
			}
			if !reflect.DeepEqual(got.Grouping, tt.wantGrouping) {
				t.Errorf("grouping = %q, want %q", got.Grouping, tt.wantGrouping)
			}
		})
	}
}

func TestParsePromQLMatchers(t *testing.T) {
	got, err := parsePromQL(`rate(m_total{job=~"$job", status_code!~"2..", route="a\"b"}[5m])`)
	if err != nil {
		t.Fatal(err)
	}
	want := []selector{{Metric: "m_total", Matchers: []matcher{
		{Label: "job", Op: "=~", Value: "$job"},
		{Label: "status_code", Op: "!~", Value: "2.."},
		{Label: "route", Op: "=", Value: `a"b`},
	}}}
	if !reflect.DeepEqual(got.Selectors, want) {
		t.Fatalf("selectors = %+v, want %+v", got.Selectors, want)
	}
}

func TestParsePromQLErrors(t *testing.T) {
	tests := []struct {
		give    string
		wantErr string
	}{
		{give: `m{route="x}`, wantErr: "unterminated string"},
		{give: `m{route}`, wantErr: "without an operator"},
		{give: `rate(m[5m)`, wantErr: "unterminated range"},
		{give: `{job="x"}`, wantErr: "without a metric name"},
		{give: `sum by (job m`, wantErr: "unterminated by clause"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := parsePromQL(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseVariableQuery(t *testing.T) {
	tests := []struct {
		give         string
		wantMetrics  []string
		wantGrouping []string
	}{
		{give: `label_values(gateway_build_info, job)`, wantMetrics: []string{"gateway_build_info"}, wantGrouping: []string{"job"}},
		{give: `label_values(http_requests_total{job=~"$job"}, route)`, wantMetrics: []string{"http_requests_total"}, wantGrouping: []string{"route"}},
		{give: `query_result(topk(5, sum by (route) (rate(http_requests_total[1h]))))`, wantMetrics: []string{"http_requests_total"}, wantGrouping: []string{"route"}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := parseVariableQuery(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metrics(), tt.wantMetrics) || !reflect.DeepEqual(got.Grouping, tt.wantGrouping) {
				t.Fatalf("got metrics %q grouping %q, want %q %q", got.Metrics(), got.Grouping, tt.wantMetrics, tt.wantGrouping)
			}
		})
	}
	if _, err := parseVariableQuery(`metrics(gateway_)`); err == nil {
		t.Fatal("an unsupported variable query was accepted")
	}
}
