package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/cli"
)

// run runs the command line with a deadline, so a command that wrongly starts
// serving cannot hang the test.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = cli.Run(ctx, append([]string{"agora"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	code, out, errOut := run(t, "--help")
	if code != 0 {
		t.Fatalf("agora --help exited %d: %s", code, errOut)
	}
	for _, cmd := range []string{"serve", "migrate", "openapi"} {
		if !regexp.MustCompile(`(?m)^\s+` + cmd + `\s`).MatchString(out) {
			t.Errorf("agora --help does not list the %s command:\n%s", cmd, out)
		}
	}
}

func TestServeHelpListsEveryFlagWithItsEnvVar(t *testing.T) {
	code, out, errOut := run(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("agora serve --help exited %d: %s", code, errOut)
	}
	// Flags that must be there, with their variables.
	required := map[string]string{
		"data-dir":             "AGORA_DATA_DIR",
		"modules":              "AGORA_MODULES",
		"log-level":            "AGORA_LOG_LEVEL",
		"log-format":           "AGORA_LOG_FORMAT",
		"db-max-open-conns":    "AGORA_DB_MAX_OPEN_CONNS",
		"http-addr":            "AGORA_HTTP_ADDR",
		"demo":                 "AGORA_DEMO",
		"migrate":              "AGORA_MIGRATE_ON_START",
		"admin-token":          "AGORA_ADMIN_TOKEN",
		"http-request-timeout": "AGORA_HTTP_REQUEST_TIMEOUT",
		"http-max-body-bytes":  "AGORA_HTTP_MAX_BODY_BYTES",
		"http-max-in-flight":   "AGORA_HTTP_MAX_IN_FLIGHT",
		"bus-max-in-flight":    "AGORA_BUS_MAX_IN_FLIGHT",
		"shutdown-timeout":     "AGORA_SHUTDOWN_TIMEOUT",
	}
	// Every other flag's variable follows from its name: --foo-bar is AGORA_FOO_BAR.
	envOf := func(flag string) string {
		if env, ok := required[flag]; ok {
			return env
		}
		return "AGORA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
	}

	lines := map[string]string{} // flag name -> its help line
	flagLine := regexp.MustCompile(`^\s+--([a-z0-9-]+)`)
	for _, l := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(l); m != nil && m[1] != "help" {
			lines[m[1]] = l
		}
	}
	for flag := range required {
		if _, ok := lines[flag]; !ok {
			t.Errorf("serve --help does not list --%s", flag)
		}
	}
	for flag, l := range lines {
		if env := envOf(flag); !strings.Contains(l, "[$"+env+"]") {
			t.Errorf("serve --help: --%s does not name $%s: %q", flag, env, l)
		}
	}
}

func TestUnknownModule(t *testing.T) {
	tests := []struct {
		name string
		env  string // AGORA_MODULES; empty: not set
		args []string
	}{
		{name: "serve flag", args: []string{"serve", "--modules", "nope", "--http-addr", "127.0.0.1:0"}},
		{name: "migrate flag", args: []string{"migrate", "--modules", "catalog,nope"}},
		{name: "migrate env", env: "nope", args: []string{"migrate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.env != "" {
				t.Setenv("AGORA_MODULES", tt.env)
			}
			code, _, errOut := run(t, append(tt.args, "--data-dir", dir)...)
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if !strings.Contains(errOut, `"nope"`) {
				t.Errorf("stderr does not name the unknown module: %q", errOut)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused command left files in the data dir: %v", entries)
			}
		})
	}
}

// logLines decodes JSON log output, one record a line.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, sc.Text())
		}
		out = append(out, rec)
	}
	return out
}

func countMsg(recs []map[string]any, msg string) int {
	n := 0
	for _, r := range recs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

func TestMigrate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh", "data") // does not exist yet
	t.Setenv("AGORA_DATA_DIR", dir)                    // the environment variable is honoured

	code, _, errOut := run(t, "migrate", "--log-format", "json")
	if code != 0 {
		t.Fatalf("first migrate exited %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "catalog.db")); err != nil {
		t.Fatalf("migrate did not create catalog.db: %v", err)
	}
	first := logLines(t, errOut)
	if countMsg(first, "migration applied") == 0 {
		t.Errorf("first migrate applied no migration; log:\n%s", errOut)
	}
	if countMsg(first, "migrations are up to date") != 1 {
		t.Errorf("first migrate did not report catalog up to date; log:\n%s", errOut)
	}

	code, _, errOut = run(t, "migrate", "--log-format", "json")
	if code != 0 {
		t.Fatalf("second migrate exited %d: %s", code, errOut)
	}
	second := logLines(t, errOut)
	if n := countMsg(second, "migration applied"); n != 0 {
		t.Errorf("second migrate applied %d migrations, want 0 (not idempotent); log:\n%s", n, errOut)
	}
	if countMsg(second, "migrations are up to date") != 1 {
		t.Errorf("second migrate did not report catalog up to date; log:\n%s", errOut)
	}
}

func TestOpenAPI(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{name: "default is JSON", args: []string{"openapi"}, check: func(t *testing.T, out string) {
			var doc struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
				t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
			}
			if _, ok := doc.Paths["/v1/products"]; !ok {
				t.Errorf("the catalog's routes are missing though no module runs: paths %v", doc.Paths)
			}
		}},
		{name: "yaml", args: []string{"openapi", "--format", "yaml"}, check: func(t *testing.T, out string) {
			if !regexp.MustCompile(`(?m)^openapi: "?3\.1`).MatchString(out) {
				t.Errorf("YAML output has no 'openapi: 3.1' line:\n%.500s", out)
			}
			if strings.HasPrefix(strings.TrimSpace(out), "{") {
				t.Error("YAML output looks like JSON")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit code %d: %s", code, errOut)
			}
			tt.check(t, out)
		})
	}
}

func TestOpenAPIBadFormat(t *testing.T) {
	code, out, errOut := run(t, "openapi", "--format", "xml")
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	if !strings.Contains(errOut, "--format") {
		t.Errorf("stderr does not explain the problem: %q", errOut)
	}
}
