package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		give    string
		want    time.Duration
		wantErr string
	}{
		{give: "10s", want: 10 * time.Second},
		{give: "1h30m", want: 90 * time.Minute},
		{give: "7d", want: 7 * 24 * time.Hour},
		{give: "1d12h", want: 36 * time.Hour},
		{give: "0", want: 0},
		{give: "250ms", want: 250 * time.Millisecond},
		{give: "10", wantErr: `duration "10" needs a unit, e.g. 10s`},
		{give: "ten seconds", wantErr: `expected a duration such as 500ms, 10s, 15m or 24h, got "ten seconds"`},
		{give: "-5s", wantErr: `duration must not be negative, got "-5s"`},
		{give: "", wantErr: "expected a duration such as 500ms, 10s, 15m or 24h, got an empty value"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseDuration(tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		give    string
		want    int64
		wantErr bool
	}{
		{give: "512", want: 512},
		{give: "8KiB", want: 8 << 10},
		{give: "10MiB", want: 10 << 20},
		{give: "1GiB", want: 1 << 30},
		{give: "64KB", want: 64000},
		{give: "2 MiB", want: 2 << 20},
		{give: "1.5MiB", wantErr: true},
		{give: "lots", wantErr: true},
		{give: "-1", wantErr: true},
		{give: "99999999999GiB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseSize(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
	if FormatSize(8<<10) != "8KiB" || FormatSize(10<<20) != "10MiB" || FormatSize(1000) != "1000" {
		t.Fatal("FormatSize")
	}
}

func TestDecodeStrictErrors(t *testing.T) {
	type inner struct {
		Burst  int      `yaml:"burst"`
		Period Duration `yaml:"period"`
	}
	type outer struct {
		Name  string   `yaml:"name"`
		On    bool     `yaml:"on"`
		Inner inner    `yaml:"inner"`
		List  []string `yaml:"list"`
	}
	tests := []struct {
		name string
		give string
		want []string
	}{
		{
			name: "unknown nested key with suggestion",
			give: "name: x\ninner:\n  brust: 3\n",
			want: []string{`f.yaml:3: inner.brust: unknown field "brust" (did you mean "burst"?)`},
		},
		{
			name: "wrong types",
			give: "name: [a]\non: maybe\ninner: {burst: many, period: 10}\n",
			want: []string{
				`f.yaml:1: name: expected a string, got a list`,
				`f.yaml:2: on: expected true or false, got "maybe"`,
				`f.yaml:3: inner.burst: expected an integer, got "many"`,
				`f.yaml:3: inner.period: duration "10" needs a unit, e.g. 10s`,
			},
		},
		{
			name: "duplicate key",
			give: "name: a\nname: b\n",
			want: []string{`f.yaml:2: name: duplicate key "name"`},
		},
		{
			name: "list expected",
			give: "list: abc\n",
			want: []string{`f.yaml:1: list: expected a list, got "abc"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := ParseNode("f.yaml", []byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			var out outer
			err = DecodeStrict("f.yaml", root, "", &out)
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("GW_TEST_SECRET", "s3cr3t")
	t.Setenv("GW_TEST_PORT", "8080")
	t.Setenv("GW_TEST_EMPTY", "")
	src := `
a: ${GW_TEST_SECRET}
b: "prefix-${GW_TEST_SECRET}-suffix"
c: ${GW_TEST_UNSET_VAR}
d: ${GW_TEST_UNSET_VAR:-fallback}
e: $${NOT_EXPANDED}
f: ${GW_TEST_PORT}
g: ${GW_TEST_EMPTY}
`
	root, err := ParseNode("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	err = ExpandEnv("f.yaml", root)
	if err == nil || err.Error() != "f.yaml:4: c: environment variable GW_TEST_UNSET_VAR is not set" {
		t.Fatalf("err = %v", err)
	}
	var got struct {
		A, B, C, D, E string
		F             int
		G             string
	}
	if err := DecodeStrict("f.yaml", root, "", &got); err != nil {
		t.Fatal(err)
	}
	if got.A != "s3cr3t" || got.B != "prefix-s3cr3t-suffix" || got.D != "fallback" || got.E != "${NOT_EXPANDED}" || got.F != 8080 || got.G != "" {
		t.Fatalf("got %+v", got)
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse("bad.yaml", []byte("version: 1\nroutes: [\n  - x\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "invalid YAML") {
		t.Fatalf("err = %v", err)
	}
	_, err = Parse("empty.yaml", nil)
	if err == nil || err.Error() != "empty.yaml:1: the file is empty" {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte(`
upstreams:
  u: { targets: ["http://127.0.0.1:9"] }
routes:
  - name: r
    match: { path_prefix: / }
    upstream: u
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 1 || cfg.Listen != ":8080" || cfg.Admin.Listen != "127.0.0.1:9901" ||
		cfg.Server.MaxRequestHeaderBytes != 8<<10 || cfg.Server.MaxRequestBodyBytes != 10<<20 ||
		cfg.Server.ShutdownTimeout.D() != 30*time.Second || !*cfg.Log.AccessLog {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	u := cfg.Upstreams["u"]
	if u.Balance != "round_robin" || u.Timeout.D() != 15*time.Second || u.ConnectTimeout.D() != time.Second || u.MaxConnsPerTarget != 1024 {
		t.Fatalf("upstream defaults not applied: %+v", u)
	}
}

func TestMergeKeys(t *testing.T) {
	const file = `version: 1
upstreams:
  users: &defaults
    targets: ["http://127.0.0.1:9002"]
    timeout: 7s
    retries: 2
  slow: &slow
    targets: ["http://127.0.0.1:9004"]
    timeout: 30s
  orders:
    <<: *defaults
    targets: ["http://127.0.0.1:9003"]
  both:
    retries: 1
    <<: [*slow, *defaults]
routes:
  - name: users
    match: { path_prefix: /v1/users/ }
    upstream: orders
`
	cfg, err := Parse("merge.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give        string
		wantTarget  string
		wantTimeout time.Duration
		wantRetries int
	}{
		{give: "orders", wantTarget: "http://127.0.0.1:9003", wantTimeout: 7 * time.Second, wantRetries: 2},
		{give: "both", wantTarget: "http://127.0.0.1:9004", wantTimeout: 30 * time.Second, wantRetries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			u := cfg.Upstreams[tt.give]
			if u == nil {
				t.Fatalf("upstream %s missing", tt.give)
			}
			if len(u.Targets) != 1 || u.Targets[0].URL != tt.wantTarget || u.Timeout.D() != tt.wantTimeout || u.Retries != tt.wantRetries {
				t.Fatalf("got targets %v timeout %v retries %d, want %s %v %d", u.Targets, u.Timeout.D(), u.Retries,
					tt.wantTarget, tt.wantTimeout, tt.wantRetries)
			}
			if n := u.Meta.Pos("timeout"); n == nil || n.Line == 0 {
				t.Fatal("merged key has no position")
			}
		})
	}
}

func TestMergeKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string
	}{
		{
			name: "unknown field in the anchor",
			give: `version: 1
upstreams:
  users: &defaults
    targets: ["http://127.0.0.1:9002"]
    timout: 7s
  orders:
    <<: *defaults
    targets: ["http://127.0.0.1:9003"]
routes:
  - name: users
    match: { path_prefix: /v1/users/ }
    upstream: orders
`,
			want: []string{
				`merge.yaml:5: upstreams.users.timout: unknown field "timout" (did you mean "timeout"?)`,
				`merge.yaml:5: upstreams.orders.timout: unknown field "timout" (did you mean "timeout"?)`,
			},
		},
		{
			name: "merge of a scalar",
			give: `version: 1
upstreams:
  users:
    targets: &t "http://127.0.0.1:9002"
  orders:
    <<: *t
    targets: ["http://127.0.0.1:9003"]
routes:
  - name: users
    match: { path_prefix: /v1/users/ }
    upstream: orders
`,
			want: []string{
				`merge.yaml:4: upstreams.users.targets: expected a list, got "http://127.0.0.1:9002"`,
				`merge.yaml:6: upstreams.orders.<<: merges mappings only (<<: *anchor or <<: [*a, *b]), got "http://127.0.0.1:9002"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("merge.yaml", []byte(tt.give))
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestShutdownDelayWithinTimeout(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "shutdown_delay: 5s, shutdown_timeout: 10s", want: ""},
		{give: "shutdown_delay: 10s, shutdown_timeout: 10s", want: "t.yaml:3: server.shutdown_delay: must be shorter than shutdown_timeout (10s), which counts it: requests in flight would get no time to finish, got 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			file := "version: 1\nserver:\n  { " + tt.give + " }\nupstreams:\n  u: { targets: [\"http://127.0.0.1:1\"] }\nroutes:\n  - { name: r, match: { path_prefix: / }, upstream: u }\n"
			_, err := Parse("t.yaml", []byte(file))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
