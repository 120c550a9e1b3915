package apilint

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

// quietEnv keeps the CLIs from phoning home: Redocly's telemetry and update
// check, and the AsyncAPI CLI's analytics (off when CI is set). Nothing these
// tests run may send traffic anywhere but 127.0.0.1.
var quietEnv = []string{
	"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "CI=true",
	"NO_UPDATE_NOTIFIER=1", "npm_config_update_notifier=false", "DO_NOT_TRACK=1",
	"SUPPRESS_NO_CONFIG_WARNING=1", // the AsyncAPI CLI looks for a node-config folder it does not need
}

// npmTool returns the path of a CLI installed in this folder's node_modules.
// When it (or node) is missing the test skips, or fails under
// AGORA_TEST_REQUIRE_NODE=1.
func npmTool(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(procs.RepoRoot(t), "tests", "apilint", "node_modules", ".bin", name)
	_, statErr := os.Stat(bin)
	_, nodeErr := exec.LookPath("node")
	if statErr == nil && nodeErr == nil {
		return bin
	}
	why := "no node on PATH"
	if statErr != nil {
		why = "tests/apilint/node_modules/.bin/" + name + " is missing"
	}
	msg := "apilint: " + why + ". Install the pinned CLIs (node 20+): " +
		"cd tests/apilint && npm ci --ignore-scripts"
	if os.Getenv("AGORA_TEST_REQUIRE_NODE") == "1" {
		t.Fatal(msg + " (AGORA_TEST_REQUIRE_NODE=1 makes this a failure)")
	}
	t.Skip(msg + "; set AGORA_TEST_REQUIRE_NODE=1 to make this a failure.")
	return ""
}

// run runs a CLI in dir with quietEnv and returns its combined output and exit
// code; it fails the test if the CLI cannot be started or runs past timeout.
func run(t *testing.T, dir string, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	return runEnv(t, dir, timeout, nil, name, args...)
}

// runEnv is run with env (KEY=value) added to the environment.
func runEnv(t *testing.T, dir string, timeout time.Duration, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), quietEnv...), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s: no answer within %v\n%s", filepath.Base(name), strings.Join(args, " "), timeout, out.String())
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), 0
}
