package apilint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// The lint gates run on api/openapi.yaml. That file is the served document:
// TestOpenAPISnapshot (internal/app) keeps it byte-equal to what the code
// generates, and TestServedDocumentIsTheSnapshot that the binary serves it.

// TestRedoclyLint fails on any error or warning of Redocly's recommended
// ruleset, as configured in redocly.yaml (a rule turned off there carries its
// reason).
func TestRedoclyLint(t *testing.T) {
	redocly := npmTool(t, "redocly")
	root := procs.RepoRoot(t)
	out, code := run(t, root, 2*time.Minute, redocly, "lint", "api/openapi.yaml", "--config", "redocly.yaml", "--format", "json")
	var report struct {
		Totals struct {
			Errors, Warnings int
		}
		Problems []struct {
			RuleID, Severity, Message string
			Location                  []struct{ Pointer string }
		}
	}
	// The JSON report is the output's one object; node may print notices around it.
	start, end := strings.Index(out, "{"), strings.LastIndex(out, "}")
	if start < 0 || end < start || json.Unmarshal([]byte(out[start:end+1]), &report) != nil {
		t.Fatalf("redocly lint exited %d without a JSON report:\n%s", code, out)
	}
	if report.Totals.Errors+report.Totals.Warnings == 0 && code == 0 {
		return
	}
	var b strings.Builder
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = strings.ReplaceAll(p.Location[0].Pointer, "~1", "/")
		}
		fmt.Fprintf(&b, "  %-5s %-26s %s: %s\n", p.Severity, p.RuleID, where, p.Message)
	}
	t.Errorf("redocly lint api/openapi.yaml: %d errors, %d warnings (exit %d); fix the document, "+
		"or turn the rule off in redocly.yaml with the reason:\n%s",
		report.Totals.Errors, report.Totals.Warnings, code, b.String())
}

// TestSpectralLint fails on any error or warning of Spectral's OpenAPI ruleset,
// as configured in .spectral.yaml.
func TestSpectralLint(t *testing.T) {
	spectral := npmTool(t, "spectral")
	root := procs.RepoRoot(t)
	out, code := run(t, root, 2*time.Minute, spectral, "lint", "api/openapi.yaml",
		"--ruleset", ".spectral.yaml", "--fail-severity", "warn", "--format", "stylish")
	if code != 0 {
		t.Errorf("spectral lint api/openapi.yaml exited %d (errors or warnings); fix the document, "+
			"or turn the rule off in .spectral.yaml with the reason:\n%s", code, out)
	}
}

// TestAsyncAPIValidate validates api/asyncapi.yaml, the document of the
// messages between modules, with the AsyncAPI CLI; errors fail, warnings are
// logged.
func TestAsyncAPIValidate(t *testing.T) {
	root := procs.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "api", "asyncapi.yaml")); err != nil {
		t.Fatalf("api/asyncapi.yaml missing: the AsyncAPI document of the bus's messages must be in the repository (issue 12, part 5): %v", err)
	}
	asyncapi := npmTool(t, "asyncapi")
	out, code := run(t, root, 3*time.Minute, asyncapi, "validate", "api/asyncapi.yaml",
		"--fail-severity", "error", "--diagnostics-format", "text")
	if code != 0 {
		t.Fatalf("asyncapi validate api/asyncapi.yaml exited %d:\n%s", code, out)
	}
	t.Logf("asyncapi validate api/asyncapi.yaml:\n%s", out)
}
