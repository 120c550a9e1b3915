package tests

import (
	"os/exec"
	"testing"
)

// TestAsyncAPIIsGenerated fails when api/asyncapi.yaml or api/message-versions.json
// is not what tools/asyncapigen draws from the contracts — a message, its payload,
// owner or users changed without regenerating — and when a message's payload
// changed in a way its receivers would misread without a new version
// (docs/adr/0013-message-versions.md). Fix drift with `go run ./tools/asyncapigen`;
// a breaking change needs .AtVersion(n+1) on the declaration.
func TestAsyncAPIIsGenerated(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "run", "./tools/asyncapigen", "-check")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./tools/asyncapigen -check: %v\n%s", err, out)
	}
}
