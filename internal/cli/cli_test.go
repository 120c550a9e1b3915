package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/app"
	"github.com/agora-commerce/agora/internal/cli"
	"github.com/agora-commerce/agora/internal/modhost"
)

// run runs the command line with a deadline, so a command that wrongly starts
// serving cannot hang the test, and with nothing on standard input.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runWithInput(t, strings.NewReader(""), args...)
}

// runWithInput is run with stdin as standard input.
func runWithInput(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = cli.Run(ctx, append([]string{"agora"}, args...), stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp(t *testing.T) {
	code, out, errOut := run(t, "--help")
	if code != 0 {
		t.Fatalf("agora --help exited %d: %s", code, errOut)
	}
	for _, cmd := range []string{"serve", "migrate", "admin", "openapi"} {
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
		"jwt-private-key-file": "AGORA_JWT_PRIVATE_KEY_FILE",
		"jwt-public-key-file":  "AGORA_JWT_PUBLIC_KEY_FILE",
		"database-url":         "AGORA_DATABASE_URL",
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
	// The placeholder admin token is gone for good.
	if _, ok := lines["admin-token"]; ok || strings.Contains(out, "AGORA_ADMIN_TOKEN") {
		t.Errorf("serve --help still offers the placeholder admin token:\n%s", out)
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
	checkUpToDate(t, "first migrate", first, errOut)

	code, _, errOut = run(t, "migrate", "--log-format", "json")
	if code != 0 {
		t.Fatalf("second migrate exited %d: %s", code, errOut)
	}
	second := logLines(t, errOut)
	if n := countMsg(second, "migration applied"); n != 0 {
		t.Errorf("second migrate applied %d migrations, want 0 (not idempotent); log:\n%s", n, errOut)
	}
	checkUpToDate(t, "second migrate", second, errOut)
}

// checkUpToDate checks that a migrate of all modules reported each module up to
// date, once.
func checkUpToDate(t *testing.T, what string, recs []map[string]any, log string) {
	t.Helper()
	got := map[string]int{}
	for _, r := range recs {
		if r["msg"] == "migrations are up to date" {
			m, _ := r["module"].(string)
			got[m]++
		}
	}
	for _, m := range modhost.WithData(app.Modules()) {
		if got[m] != 1 {
			t.Errorf("%s reported %s up to date %d times, want once; log:\n%s", what, m, got[m], log)
		}
	}
	if len(got) != len(modhost.WithData(app.Modules())) {
		t.Errorf("%s reported modules %v up to date, want %v", what, got, modhost.WithData(app.Modules()))
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

func TestAdminCreateRefuses(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin io.Reader // nil: none at all
		want  []string  // what stderr must say
	}{
		{name: "without --email", args: []string{"admin", "create"}, stdin: strings.NewReader("a-good-password\n"),
			want: []string{"email"}},
		{name: "without a password, empty standard input", args: []string{"admin", "create", "--email", "x@example.com"},
			stdin: strings.NewReader(""), want: []string{"AGORA_ADMIN_PASSWORD", "standard input"}},
		{name: "without a password, an empty line", args: []string{"admin", "create", "--email", "x@example.com"},
			stdin: strings.NewReader("\n"), want: []string{"AGORA_ADMIN_PASSWORD", "standard input"}},
		{name: "without a password, no standard input", args: []string{"admin", "create", "--email", "x@example.com"},
			want: []string{"AGORA_ADMIN_PASSWORD", "standard input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AGORA_ADMIN_PASSWORD", "") // unset for Run, whatever the environment says
			dir := filepath.Join(t.TempDir(), "data")
			args := append(tt.args, "--data-dir", dir, "--log-format", "json")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			code := cli.Run(ctx, append([]string{"agora"}, args...), tt.stdin, &out, &errOut)
			if code != 1 {
				t.Errorf("exit code = %d, want 1; stderr: %s", code, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr does not say %q: %s", w, errOut.String())
				}
			}
			// Refused before anything was opened: no database, no key.
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(dir)
				t.Errorf("a refused admin create touched the data dir: %v", entries)
			}
		})
	}
}

func TestAdminCreateHelp(t *testing.T) {
	code, out, errOut := run(t, "admin", "create", "--help")
	if code != 0 {
		t.Fatalf("agora admin create --help exited %d: %s", code, errOut)
	}
	for _, want := range []string{"--email", "AGORA_ADMIN_PASSWORD", "--data-dir", "--database-url"} {
		if !strings.Contains(out, want) {
			t.Errorf("admin create --help does not mention %s:\n%s", want, out)
		}
	}
}

// TestAdminCreate: the operator's path to the first admin. The account is created
// with the admin role (it can sign in as one), and a second run with the same email
// fails without creating anything.
func TestAdminCreate(t *testing.T) {
	dir := t.TempDir()
	args := []string{"admin", "create", "--email", "Ops@Example.com", "--data-dir", dir, "--log-format", "json"}
	code, _, errOut := runWithInput(t, strings.NewReader("a very long admin passphrase\n"), args...)
	if code != 0 {
		t.Fatalf("admin create exited %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, `"msg":"admin created"`) || !strings.Contains(errOut, "ops@example.com") {
		t.Errorf("the log does not report the admin:\n%s", errOut)
	}
	if strings.Contains(errOut, "a very long admin passphrase") {
		t.Error("the password was logged")
	}
	code, _, errOut = runWithInput(t, strings.NewReader("another long passphrase\n"), args...)
	if code != 1 || !strings.Contains(errOut, "identity.email_unavailable") {
		t.Errorf("a second admin with the same email: exit %d, %s", code, errOut)
	}
}
