package apilint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"go.yaml.in/yaml/v3"
)

// TestServedDocumentIsTheSnapshot shows that what `agora serve` answers at
// /openapi.json is api/openapi.yaml, the document the lint gates, the breaking
// change gate and the e2e suites' answer checks read.
func TestServedDocumentIsTheSnapshot(t *testing.T) {
	base := startAgora(t)
	var served, snapshot any
	if err := json.Unmarshal(fetch(t, base+"/openapi.json"), &served); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(procs.RepoRoot(t), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &snapshot); err != nil {
		t.Fatal(err)
	}
	// Through JSON, so YAML's and JSON's number and map types compare alike.
	j, err := json.Marshal(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	snapshot = nil
	if err := json.Unmarshal(j, &snapshot); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(served, snapshot) {
		t.Fatal("GET /openapi.json differs from api/openapi.yaml; regenerate the snapshot with\n" +
			"  go run ./cmd/agora openapi --format yaml > api/openapi.yaml")
	}
}

// TestTypeScriptClient generates a TypeScript client from the document the
// binary serves (openapi-typescript), compiles ts/checkout.mts with it under
// `tsc --strict` — no casts, and type-level checks that the errors of
// GET /v1/products/{id}, POST /v1/orders and GET /v1/orders/{id} are the problem
// schema — and runs it with node: the demo customer signs in, lists products,
// fills the cart, places an order with an Idempotency-Key and polls it until
// it is confirmed.
func TestTypeScriptClient(t *testing.T) {
	generate, tsc := npmTool(t, "openapi-typescript"), npmTool(t, "tsc")
	base := startAgora(t)
	here := filepath.Join(procs.RepoRoot(t), "tests", "apilint")

	// A work folder with the program, its tsconfig, the generated schema and
	// this folder's node_modules, so both tsc and node resolve openapi-fetch.
	work := t.TempDir()
	for _, f := range []string{"checkout.mts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join(here, "ts", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(here, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "openapi.json"), fetch(t, base+"/openapi.json"), 0o644); err != nil {
		t.Fatal(err)
	}

	if out, code := run(t, work, 2*time.Minute, generate, "openapi.json", "-o", "schema.d.ts"); code != 0 {
		t.Fatalf("openapi-typescript exited %d:\n%s", code, out)
	}
	if out, code := run(t, work, 3*time.Minute, tsc, "-p", ".", "--strict"); code != 0 {
		t.Fatalf("tsc --strict: the generated client does not type the checkout (exit %d):\n%s", code, out)
	}
	out, code := runEnv(t, work, time.Minute, []string{"AGORA_BASE=" + base}, "node", filepath.Join("out", "checkout.mjs"))
	if code != 0 {
		t.Fatalf("node out/checkout.mjs exited %d:\n%s", code, out)
	}
	t.Logf("the TypeScript checkout:\n%s", out)
}
