package app_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/agora-commerce/agora/internal/cli"
)

// TestOpenAPISnapshot keeps api/openapi.yaml, the checked-in OpenAPI document, equal
// to the one the code generates, so every API change shows up in review. After an
// intended change, regenerate it with: go run ./cmd/agora openapi --format yaml > api/openapi.yaml
func TestOpenAPISnapshot(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli.Run(context.Background(), []string{"agora", "openapi", "--format", "yaml"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("agora openapi exited %d: %s", code, errOut.String())
	}
	want, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("api/openapi.yaml is out of date: the API changed. If that was intended, run\n" +
			"  go run ./cmd/agora openapi --format yaml > api/openapi.yaml\nand commit the result.")
	}
}
