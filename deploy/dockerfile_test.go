package deploy

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/config"
	"github.com/gatewayd/gatewayd/pkg/gateway"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, COPY, ...
	Args string
	Line int
}

// flags splits leading --name=value flags off the arguments.
func (in instruction) flags() (map[string]string, []string) {
	fl := map[string]string{}
	var rest []string
	for _, f := range strings.Fields(in.Args) {
		if len(rest) == 0 && strings.HasPrefix(f, "--") {
			k, v, _ := strings.Cut(f[2:], "=")
			fl[k] = v
			continue
		}
		rest = append(rest, f)
	}
	return fl, rest
}

// stage is one FROM and the instructions after it.
type stage struct {
	Image string
	Name  string
	Body  []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Body {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

var argRefRe = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// parseDockerfile splits a Dockerfile into stages. ARGs declared before the
// first FROM are substituted (with their defaults) into FROM lines.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ins []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		ins = append(ins, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: a continuation line ends the file", path)
	}
	globals := map[string]string{}
	var stages []stage
	for _, in := range ins {
		switch {
		case in.Cmd == "FROM":
			_, rest := in.flags()
			if len(rest) == 0 {
				t.Fatalf("%s:%d: FROM without an image", path, in.Line)
			}
			st := stage{Image: argRefRe.ReplaceAllStringFunc(rest[0], func(m string) string {
				return globals[argRefRe.FindStringSubmatch(m)[1]]
			})}
			if len(rest) == 3 && strings.EqualFold(rest[1], "AS") {
				st.Name = rest[2]
			}
			stages = append(stages, st)
		case len(stages) == 0:
			if in.Cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", path, in.Line, in.Cmd)
			}
			k, v, _ := strings.Cut(in.Args, "=")
			globals[k] = v
		default:
			stages[len(stages)-1].Body = append(stages[len(stages)-1].Body, in)
		}
	}
	return stages
}

// execForm decodes a JSON-array (exec form) CMD or ENTRYPOINT.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.Args), &out); err != nil {
		t.Fatalf("Dockerfile:%d: %s is not in exec (JSON array) form: %v", in.Line, in.Cmd, err)
	}
	return out
}

// dockerignore is a parsed .dockerignore with Docker's semantics: the last
// matching pattern wins, "!" re-includes, "**" spans directories, and a
// pattern that matches a directory matches everything below it.
type dockerignore []struct {
	re      *regexp.Regexp
	include bool
}

func parseDockerignore(t *testing.T, path string) dockerignore {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var di dockerignore
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := strings.HasPrefix(line, "!")
		p := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(strings.TrimPrefix(line, "!"))), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(p); i++ {
			switch c := p[i]; {
			case strings.HasPrefix(p[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(p[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		di = append(di, struct {
			re      *regexp.Regexp
			include bool
		}{regexp.MustCompile(re.String()), include})
	}
	return di
}

// excluded reports whether path (slash-separated, relative to the context)
// stays out of the build context.
func (di dockerignore) excluded(path string) bool {
	out := false
	for _, p := range di {
		for q := path; ; {
			if p.re.MatchString(q) {
				out = !p.include
				break
			}
			i := strings.LastIndexByte(q, '/')
			if i < 0 {
				break
			}
			q = q[:i]
		}
	}
	return out
}

func TestDockerignoreMatcher(t *testing.T) {
	di := parseDockerignore(t, filepath.Join(moduleRoot(t), ".dockerignore"))
	tests := []struct {
		give         string
		wantExcluded bool
	}{
		{give: "go.mod"},
		{give: "cmd/gatewayd/main.go"},
		{give: "configs/gateway.yaml"},
		{give: "pkg/store/redis/ratelimit.lua"},
		{give: "deploy/docker/gateway.yaml"},
		{give: ".git/HEAD", wantExcluded: true},
		{give: "bin/gatewayd", wantExcluded: true},
		{give: "pkg/gateway/check_test.go", wantExcluded: true},
		{give: "pkg/plugins/jwt/README.md", wantExcluded: true},
		{give: "testdata/config/valid/minimal.yaml", wantExcluded: true},
		{give: "deploy/k8s/deployment.yaml", wantExcluded: true},
		{give: "Dockerfile", wantExcluded: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := di.excluded(tt.give); got != tt.wantExcluded {
				t.Fatalf("excluded(%q) = %v, want %v", tt.give, got, tt.wantExcluded)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	root := moduleRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	di := parseDockerignore(t, filepath.Join(root, ".dockerignore"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasPrefix(build.Image, "golang:1.26") || build.Name == "" {
		t.Errorf("build stage FROM %q AS %q, want golang:1.26 with a name", build.Image, build.Name)
	}
	if final.Image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.Image)
	}

	// The static build of both binaries.
	var goBuild *instruction
	for _, in := range build.all("RUN") {
		if strings.Contains(in.Args, "go build") {
			goBuild = &in
		}
	}
	if goBuild == nil {
		t.Fatal("the build stage has no RUN go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-o /out/", "./cmd/gatewayd", "./cmd/authd", "-X main.version="} {
		if !strings.Contains(goBuild.Args, want) {
			t.Errorf("Dockerfile:%d: go build lacks %q", goBuild.Line, want)
		}
	}

	// Every COPY from the build context exists and is not .dockerignore'd;
	// every COPY --from names an earlier stage.
	names := map[string]bool{}
	for i, st := range stages {
		for _, in := range st.all("COPY") {
			fl, args := in.flags()
			if len(args) < 2 {
				t.Errorf("Dockerfile:%d: COPY needs a source and a destination", in.Line)
				continue
			}
			if from, ok := fl["from"]; ok {
				if !names[from] {
					t.Errorf("Dockerfile:%d: COPY --from=%s names no earlier stage", in.Line, from)
				}
				continue
			}
			for _, src := range args[:len(args)-1] {
				rel := strings.TrimPrefix(filepath.Clean(src), "/")
				if rel == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
					t.Errorf("Dockerfile:%d: COPY %s: %v", in.Line, src, err)
				}
				if di.excluded(filepath.ToSlash(rel)) {
					t.Errorf("Dockerfile:%d: COPY %s, but .dockerignore excludes it", in.Line, src)
				}
			}
		}
		names[st.Name] = i < len(stages)-1
	}

	// Non-root, by number.
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("the final stage has no USER: it would run as root")
	}
	user := users[len(users)-1].Args
	uid, _, _ := strings.Cut(user, ":")
	if uid == "0" || uid == "root" || !regexp.MustCompile(`^[0-9]+$`).MatchString(uid) {
		t.Errorf("USER %s: want a numeric non-root uid (Kubernetes verifies runAsNonRoot only against numbers)", user)
	}

	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.Args)...)
	}
	for _, p := range []string{"8080", "9901"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE lacks %s (got %v)", p, exposed)
		}
	}
	if len(final.all("HEALTHCHECK")) > 0 {
		t.Error("HEALTHCHECK cannot run on distroless (no shell, no curl)")
	}

	ep, cmd := final.all("ENTRYPOINT"), final.all("CMD")
	if len(ep) != 1 || len(cmd) != 1 {
		t.Fatalf("want one ENTRYPOINT and one CMD, got %d and %d", len(ep), len(cmd))
	}
	if got := execForm(t, ep[0]); !slices.Equal(got, []string{"/usr/local/bin/gatewayd"}) {
		t.Errorf("ENTRYPOINT %q, want [/usr/local/bin/gatewayd]", got)
	}
	if got := execForm(t, cmd[0]); !slices.Equal(got, []string{"-config", "/etc/gatewayd/gateway.yaml"}) {
		t.Errorf("CMD %q, want [-config /etc/gatewayd/gateway.yaml]", got)
	}

	// The binaries and the configuration land where ENTRYPOINT and CMD look.
	copies := map[string]string{} // destination -> source
	var stateOwner string
	for _, in := range final.all("COPY") {
		fl, args := in.flags()
		dst := args[len(args)-1]
		for _, src := range args[:len(args)-1] {
			if strings.HasSuffix(dst, "/") {
				copies[dst+filepath.Base(src)] = src
			} else {
				copies[dst] = src
			}
		}
		if dst == "/var/lib/gatewayd" {
			stateOwner = fl["chown"]
		}
	}
	for _, want := range []string{"/usr/local/bin/gatewayd", "/usr/local/bin/authd", "/etc/gatewayd/gateway.yaml"} {
		if copies[want] == "" {
			t.Errorf("nothing is copied to %s", want)
		}
	}
	if stateOwner != user {
		t.Errorf("/var/lib/gatewayd is owned by %q, want the USER %q so the user store is writable", stateOwner, user)
	}
	if wd := final.all("WORKDIR"); len(wd) == 0 || wd[len(wd)-1].Args != "/var/lib/gatewayd" {
		t.Errorf("WORKDIR %v, want /var/lib/gatewayd (writable, where data/users.db lands)", wd)
	}

	// The image's default configuration is valid and fits the image.
	src := copies["/etc/gatewayd/gateway.yaml"]
	data, err := os.ReadFile(filepath.Join(root, src))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envRefs(string(data)) {
		t.Setenv(v, "hXB6LJy1nz5_kWNx_UyUb463WpGKyzGXm_3NVrY9ZCiDW-M7")
	}
	cfg, err := config.Parse(src, data)
	if err := gateway.Check(cfg, err, builtin.Registry()); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if host, port := splitListen(t, cfg.Admin.Listen); isLoopback(host) || port != "9901" {
		t.Errorf("%s: admin.listen %q: in a container it must bind every interface on the exposed 9901", src, cfg.Admin.Listen)
	}
	if _, port := splitListen(t, cfg.Listen); port != "8080" {
		t.Errorf("%s: listen %q, want the exposed port 8080", src, cfg.Listen)
	}
	if cfg.Auth != nil && cfg.Redis == nil && !strings.HasPrefix(cfg.Auth.UsersFile, "/var/lib/gatewayd/") {
		t.Errorf("%s: auth.users_file %q is outside the writable /var/lib/gatewayd", src, cfg.Auth.UsersFile)
	}
}

// TestDockerBuildContext checks that .dockerignore keeps every file that
// `go build ./cmd/gatewayd ./cmd/authd` reads from this module.
func TestDockerBuildContext(t *testing.T) {
	root := moduleRoot(t)
	di := parseDockerignore(t, filepath.Join(root, ".dockerignore"))
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .SFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./cmd/gatewayd", "./cmd/authd")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(files) < 20 {
		t.Fatalf("go list found only %d files", len(files))
	}
	for _, f := range files {
		if di.excluded(f) {
			t.Errorf(".dockerignore excludes %s, which the build needs", f)
		}
	}
}

// publishRe matches a -p/--publish argument of a docker run command.
var publishRe = regexp.MustCompile(`(?:^|\s)(?:-p|--publish)[ =](\S+)`)

// TestDockerExamplesKeepAdminOnLoopback checks every docker run example
// shipped with the image: the admin port (no authentication) is published
// on the host's loopback only, never on every address of the host.
func TestDockerExamplesKeepAdminOnLoopback(t *testing.T) {
	root := moduleRoot(t)
	seen := 0
	for _, f := range []string{"Dockerfile", "deploy/docker/gateway.yaml", "deploy/README.md", "README.md", "docs/operations.md"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		inCmd := false
		for i, line := range strings.Split(string(data), "\n") {
			text := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "#"))
			if strings.HasPrefix(text, "docker run") {
				inCmd = true
			}
			if !inCmd {
				continue
			}
			for _, m := range publishRe.FindAllStringSubmatch(text, -1) {
				arg := strings.Trim(m[1], `"'`)
				if !strings.HasSuffix(arg, ":9901") {
					continue
				}
				seen++
				if !strings.HasPrefix(arg, "127.0.0.1:") && !strings.HasPrefix(arg, "[::1]:") {
					t.Errorf("%s:%d: docker run publishes the admin port as %q: bind it to the host's loopback (-p 127.0.0.1:9901:9901)", f, i+1, arg)
				}
			}
			inCmd = strings.HasSuffix(text, `\`)
		}
	}
	if seen == 0 {
		t.Fatal("no docker run example publishes the admin port; the check found nothing to check")
	}
}
