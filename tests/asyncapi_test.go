package tests

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// TestAsyncAPIIsGenerated fails when api/asyncapi.yaml or api/message-versions.json
// is not what tools/asyncapigen draws from the contracts — a message, its payload,
// owner or users changed without regenerating — and when a message's payload
// changed in a way its receivers would misread without a new version
// (docs/adr/0013-message-versions.md). Fix drift with `go run ./tools/asyncapigen`;
// a breaking change needs .AtVersion(n+1) on the declaration.
func TestAsyncAPIIsGenerated(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "run", "./tools/asyncapigen", "-check")
	cmd.Dir = procs.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./tools/asyncapigen -check: %v\n%s", err, out)
	}
}

// The binary serves the checked-in AsyncAPI document at /asyncapi.yaml, byte for
// byte, and the page that renders it at /docs/messages with its assets, all local.
func TestE2EAsyncAPI(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile(filepath.Join(procs.RepoRoot(t), "api", "asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a := startAgora(t, t.TempDir())
	doc := a.do(http.MethodGet, "/asyncapi.yaml", nil)
	doc.want(t, http.StatusOK, nil)
	if !bytes.Equal(doc.body, want) || doc.header.Get("Content-Type") != "application/yaml" {
		t.Errorf("/asyncapi.yaml: %d bytes as %q, want api/asyncapi.yaml's %d as application/yaml",
			len(doc.body), doc.header.Get("Content-Type"), len(want))
	}
	page := a.do(http.MethodGet, "/docs/messages", nil)
	page.want(t, http.StatusOK, nil)
	if m := regexp.MustCompile(`(?i)https?://`).FindString(string(page.body)); m != "" {
		t.Errorf("the messages page references a remote URL (%s):\n%s", m, page.body)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/docs/messages/assets/[^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	if len(refs) != 3 {
		t.Fatalf("the messages page references %d assets, want its bundle, style and boot script:\n%s", len(refs), page.body)
	}
	for _, m := range refs {
		if r := a.do(http.MethodGet, m[1], nil); r.status != http.StatusOK || len(r.body) == 0 {
			t.Errorf("%s: status %d, %d bytes; want 200 with content", m[1], r.status, len(r.body))
		}
	}
}
