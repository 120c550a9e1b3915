package app_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-commerce/agora/internal/httpapi"
	"github.com/agora-commerce/agora/internal/message"
	_ "github.com/agora-commerce/agora/modules" // every module's contract declares its errors
)

// TestProblemsDoc keeps docs/problems.md, the catalog of problem types, equal to the
// errors the code declares, so a new error cannot go undocumented. After an
// intended change: AGORA_UPDATE_DOCS=1 go test ./internal/app -run TestProblemsDoc
func TestProblemsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "problems.md")
	got := httpapi.ProblemCatalog(message.DeclaredErrors())
	if os.Getenv("AGORA_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Fatal("docs/problems.md is out of date: the declared errors changed. Regenerate it with\n" +
			"  AGORA_UPDATE_DOCS=1 go test ./internal/app -run TestProblemsDoc\nand commit the result.")
	}
}
