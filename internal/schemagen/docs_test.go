package schemagen

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatewayd/gatewayd/pkg/authserver"
	"github.com/gatewayd/gatewayd/pkg/plugins/builtin"
)

// goSource returns the text of every non-test Go file under pkg/ and cmd/.
func goSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			data, err := os.ReadFile(path)
			b.Write(data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// docSection returns the part of doc from the heading line to the next
// heading of the same or a higher level.
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("no heading %q", heading)
	}
	rest := doc[i+len(heading)+2:]
	hashes, _, _ := strings.Cut(heading, " ")
	for level := len(hashes); level >= 1; level-- {
		if k := strings.Index(rest, "\n"+strings.Repeat("#", level)+" "); k >= 0 {
			rest = rest[:k]
		}
	}
	return rest
}

var (
	codeHeading = regexp.MustCompile("(?m)^#{3,4} `([^`]+)`$")
	tableCode   = regexp.MustCompile(`(?m)^\| [0-9]{3} \| (.+?) \| `)
	codeSpan    = regexp.MustCompile("`([^`]+)`")
)

// TestTroubleshootingMessagesExist checks that every message the
// troubleshooting guide quotes is printed by the code: a heading `a … b`
// needs "a" and "b" in the source.
func TestTroubleshootingMessagesExist(t *testing.T) {
	src := goSource(t)
	guide := docSection(t, readDoc(t, "operations.md"), "## Troubleshooting by error message")
	var msgs []string
	for _, m := range codeHeading.FindAllStringSubmatch(guide, -1) {
		msgs = append(msgs, m[1])
	}
	for _, row := range tableCode.FindAllStringSubmatch(guide, -1) {
		for _, c := range codeSpan.FindAllStringSubmatch(row[1], -1) {
			msgs = append(msgs, c[1])
		}
	}
	if len(msgs) < 30 {
		t.Fatalf("found only %d quoted messages: the guide's layout changed", len(msgs))
	}
	for _, msg := range msgs {
		for _, part := range strings.Split(msg, "…") {
			if part = strings.TrimSpace(part); part != "" && !strings.Contains(src, part) {
				t.Errorf("%q is quoted in docs/operations.md but no Go source prints it", part)
			}
		}
	}
}

var metricName = regexp.MustCompile(`\b(?:gateway|http)_[a-z_]+[a-z]`)

// TestDocumentedMetricsExist checks the metric names in the docs against
// the ones the code defines, and that the operations guide lists them all.
func TestDocumentedMetricsExist(t *testing.T) {
	src := goSource(t)
	defined := map[string]bool{}
	for _, m := range metricName.FindAllString(src, -1) {
		if strings.HasSuffix(m, "_total") || strings.HasSuffix(m, "_seconds") || strings.HasSuffix(m, "_requests") ||
			strings.HasSuffix(m, "_info") || strings.HasSuffix(m, "_healthy") || strings.HasSuffix(m, "_state") ||
			strings.HasSuffix(m, "_calls") || strings.HasSuffix(m, "_connections") || strings.HasSuffix(m, "_keys") {
			defined[m] = true
		}
	}
	if len(defined) < 10 {
		t.Fatalf("found only %d metrics in the source", len(defined))
	}
	for _, doc := range []string{"operations.md", "plugins.md"} {
		text := readDoc(t, doc)
		for _, m := range metricName.FindAllString(text, -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !defined[base] && strings.Contains(m, "_") && (strings.HasPrefix(m, "gateway_") || strings.HasPrefix(m, "http_request")) {
				t.Errorf("docs/%s names %s, which the code does not export", doc, m)
			}
		}
	}
	ops := readDoc(t, "operations.md")
	for m := range defined {
		if !strings.Contains(ops, "`"+m+"`") {
			t.Errorf("docs/operations.md does not list %s", m)
		}
	}
}

// TestPluginReferenceCoversEveryPlugin checks that docs/plugins.md has a
// section per registered plugin kind.
func TestPluginReferenceCoversEveryPlugin(t *testing.T) {
	doc := readDoc(t, "plugins.md")
	for _, kind := range builtin.Registry().Kinds() {
		if !strings.Contains(doc, "\n## "+kind+"\n") {
			t.Errorf("docs/plugins.md has no section ## %s", kind)
		}
	}
}

var jsonMessage = regexp.MustCompile(`"message":"([^"]+)"`)

// TestAuthAPIReference checks that the auth API reference names every
// endpoint and quotes only messages the service writes.
func TestAuthAPIReference(t *testing.T) {
	doc := readDoc(t, "auth-api.md")
	for _, p := range []string{
		authserver.PathSignup, authserver.PathLogin, authserver.PathRefresh, authserver.PathLogout,
		authserver.PathLogoutAll, authserver.PathMe, authserver.PathJWKS,
	} {
		if !strings.Contains(doc, "`"+p+"`") {
			t.Errorf("docs/auth-api.md does not document %s", p)
		}
	}
	src := goSource(t)
	msgs := jsonMessage.FindAllStringSubmatch(doc, -1)
	if len(msgs) < 10 {
		t.Fatalf("found only %d example messages", len(msgs))
	}
	for _, m := range msgs {
		if strings.HasPrefix(m[1], "<") {
			continue // a placeholder in the description of the format
		}
		if !strings.Contains(src, m[1]) {
			t.Errorf("docs/auth-api.md quotes %q, which the code does not write", m[1])
		}
	}
}

var mdLinkTarget = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)

// TestDocLinks checks that the relative links of the docs and the README
// point at files that exist.
func TestDocLinks(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLinkTarget.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(file), target)); err != nil {
				t.Errorf("%s links to %s, which does not exist", filepath.Base(file), target)
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{"configuration.md", "plugins.md", "auth-api.md", "operations.md"} {
		if !strings.Contains(string(readme), "(docs/"+doc+")") {
			t.Errorf("README.md does not link docs/%s", doc)
		}
	}
}
