package apilint

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oasdiff/oasdiff/checker"
	"github.com/oasdiff/oasdiff/diff"
	"github.com/oasdiff/oasdiff/load"
	"go.yaml.in/yaml/v3"
)

// The breaking-change gate. api/released/openapi-vN.yaml is the document as
// last released (the highest N); api/openapi.yaml is the document now. A change
// that oasdiff rates breaking (ERR) or possibly breaking (WARN) — a removed
// operation or response field, a new required parameter, a narrower type, … —
// is allowed only when info.version differs from the released one and
// api/CHANGELOG.md has a section for the new version ("## <version>") with a
// line naming the change's id and, for a change to an operation, the operation
// ("- `request-parameter-became-required` GET /v1/products: …").

// TestNoUnreleasedBreakingChanges compares api/openapi.yaml with the newest
// released document and fails on a breaking change not released as above.
func TestNoUnreleasedBreakingChanges(t *testing.T) {
	root := procs.RepoRoot(t)
	releasedPath := newestReleased(t, filepath.Join(root, "api", "released"))
	released := readFile(t, releasedPath)
	current := readFile(t, filepath.Join(root, "api", "openapi.yaml"))
	changelog, err := os.ReadFile(filepath.Join(root, "api", "CHANGELOG.md"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	problems, err := gate(released, current, string(changelog))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("api/openapi.yaml against %s:\n%s", filepath.Base(releasedPath), strings.Join(problems, "\n"))
	}
}

// TestBreakingChangeGateCatches builds broken copies of the current document —
// a response field removed, a query parameter made required — and shows the
// gate refuses each, unless the version is bumped and the change is in the
// changelog.
func TestBreakingChangeGateCatches(t *testing.T) {
	current := readFile(t, filepath.Join(procs.RepoRoot(t), "api", "openapi.yaml"))
	for _, tc := range []struct {
		name, id, operation string
		breakIt             func(doc map[string]any)
	}{
		{"a response field removed", "response-required-property-removed", "GET /v1/products/{id}", func(doc map[string]any) {
			product := dig(doc, "components", "schemas", "Product")
			delete(product["properties"].(map[string]any), "sku")
			product["required"] = slices.DeleteFunc(product["required"].([]any), func(v any) bool { return v == "sku" })
		}},
		{"a query parameter made required", "request-parameter-became-required", "GET /v1/products", func(doc map[string]any) {
			get := dig(doc, "paths", "/v1/products", "get")
			for _, p := range get["parameters"].([]any) {
				if p := p.(map[string]any); p["name"] == "limit" {
					p["required"] = true
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := edit(t, current, tc.breakIt)
			problems := mustGate(t, current, broken, "")
			if !mentions(problems, tc.id, tc.operation) {
				t.Fatalf("the gate let %s through at the same version; it said:\n%s", tc.name, strings.Join(problems, "\n"))
			}
			bumped := edit(t, broken, func(doc map[string]any) { dig(doc, "info")["version"] = "99.0.0" })
			if problems := mustGate(t, current, bumped, "# Changelog\n\n## 99.0.0\n\n- nothing relevant\n"); !mentions(problems, tc.id, tc.operation) {
				t.Fatalf("the gate let %s through with a bumped version but no changelog line; it said:\n%s", tc.name, strings.Join(problems, "\n"))
			}
			changes, err := breakingChanges(current, bumped)
			if err != nil {
				t.Fatal(err)
			}
			changelog := "# Changelog\n\n## 99.0.0\n\n"
			for _, c := range changes {
				changelog += fmt.Sprintf("- `%s` %s: on purpose\n", c.id, c.operation)
			}
			if problems := mustGate(t, current, bumped, changelog); len(problems) > 0 {
				t.Fatalf("the gate refused %s released as 99.0.0 with a changelog line:\n%s", tc.name, strings.Join(problems, "\n"))
			}
		})
	}
}

// gate returns what keeps current from being released after released, given
// the changelog's text; nil when nothing does.
func gate(released, current []byte, changelog string) ([]string, error) {
	changes, err := breakingChanges(released, current)
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	oldVersion, newVersion := infoVersion(released), infoVersion(current)
	section := changelogSection(changelog, newVersion)
	var problems []string
	for _, c := range changes {
		switch {
		case newVersion == oldVersion:
			problems = append(problems, fmt.Sprintf("  %s — breaking, and info.version is still %q: bump it and list the change in api/CHANGELOG.md", c, newVersion))
		case !listed(section, c):
			problems = append(problems, fmt.Sprintf("  %s — breaking; api/CHANGELOG.md has no line for it under \"## %s\", e.g.\n      - `%s` %s: <why, and what clients do now>", c, newVersion, c.id, c.operation))
		}
	}
	return problems, nil
}

// change is one breaking change oasdiff found.
type change struct {
	id        string // oasdiff's id: response-property-removed, …
	operation string // "GET /v1/products/{id}"; empty for a change outside an operation
	text      string
}

func (c change) String() string {
	return strings.TrimSpace(fmt.Sprintf("[%s] %s %s", c.id, c.operation, c.text))
}

// breakingChanges lists the changes from base to revision that oasdiff rates
// breaking or possibly breaking, with every check it has.
func breakingChanges(base, revision []byte) ([]change, error) {
	s1, err := load.NewSpecInfoFromData(openapi3.NewLoader(), base, "released.yaml")
	if err != nil {
		return nil, fmt.Errorf("oasdiff: load the released document: %w", err)
	}
	s2, err := load.NewSpecInfoFromData(openapi3.NewLoader(), revision, "openapi.yaml")
	if err != nil {
		return nil, fmt.Errorf("oasdiff: load the current document: %w", err)
	}
	d, sources, err := diff.GetWithOperationsSourcesMap(diff.NewConfig(), s1, s2)
	if err != nil {
		return nil, fmt.Errorf("oasdiff: diff: %w", err)
	}
	l := checker.NewDefaultLocalizer()
	var out []change
	for _, c := range checker.CheckBackwardCompatibility(checker.NewConfig(checker.GetAllChecks()), d, sources) {
		op := strings.TrimSpace(c.GetOperation() + " " + c.GetPath())
		out = append(out, change{id: c.GetId(), operation: op, text: c.GetUncolorizedText(l)})
	}
	return out, nil
}

// listed reports whether a line of section names c's id and operation.
func listed(section string, c change) bool {
	for _, line := range strings.Split(section, "\n") {
		if strings.Contains(line, c.id) && strings.Contains(line, c.operation) {
			return true
		}
	}
	return false
}

// changelogSection returns the text under "## <version>" up to the next "## ".
func changelogSection(changelog, version string) string {
	re := regexp.MustCompile(`(?m)^## \[?` + regexp.QuoteMeta(version) + `\]?(\s.*)?$`)
	loc := re.FindStringIndex(changelog)
	if loc == nil {
		return ""
	}
	rest := changelog[loc[1]:]
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func infoVersion(doc []byte) string {
	var d struct {
		Info struct{ Version string } `yaml:"info"`
	}
	_ = yaml.Unmarshal(doc, &d)
	return d.Info.Version
}

// newestReleased returns the released document with the highest N in
// openapi-vN.yaml.
func newestReleased(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "openapi-v*.yaml"))
	best, bestN := "", -1
	for _, f := range files {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "openapi-v"), ".yaml"))
		if err == nil && n > bestN {
			best, bestN = f, n
		}
	}
	if best == "" {
		t.Fatalf("no released document (api/released/openapi-vN.yaml) in %s", dir)
	}
	return best
}

func mustGate(t *testing.T, released, current []byte, changelog string) []string {
	t.Helper()
	problems, err := gate(released, current, changelog)
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

func mentions(problems []string, id, operation string) bool {
	return slices.ContainsFunc(problems, func(p string) bool {
		return strings.Contains(p, "["+id+"]") && strings.Contains(p, operation)
	})
}

// edit returns doc with change applied to its decoded form.
func edit(t *testing.T, doc []byte, change func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	change(m)
	out, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dig walks doc's maps by keys.
func dig(doc map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		doc = doc[k].(map[string]any)
	}
	return doc
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
