package tests

import (
	"os/exec"
	"testing"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// TestArchitectureDocIsGenerated fails when docs/architecture.md's module map or
// message table, or a contract declaration's "Handled by" lines, are not what
// tools/archdoc draws from the code: a module, message, handler or caller was
// added, renamed or moved without regenerating. Fix with `go run ./tools/archdoc`.
func TestArchitectureDocIsGenerated(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "run", "./tools/archdoc", "-check")
	cmd.Dir = procs.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./tools/archdoc -check: %v\n%s", err, out)
	}
}
