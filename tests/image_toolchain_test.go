package tests

import (
	"context"
	"debug/buildinfo"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/testcontainers/testcontainers-go"

	"github.com/agora-commerce/agora/tests/supplychain"
)

// TestImageToolchain checks that the project's image carries a binary built with the
// patched Go toolchain the Dockerfile names (ARG GO_TOOLCHAIN), not with whatever Go
// its base image has: the standard library is compiled into the binary, so the
// toolchain decides which standard-library vulnerabilities ship (docs/security.md,
// "Supply chain").
func TestImageToolchain(t *testing.T) {
	image := projectImage(t)
	want := dockerfileToolchain(t, procs.RepoRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A created, never started, container is enough to copy the binary out.
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{Image: image},
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("create a container of the image: %v", err)
	}
	r, err := ctr.CopyFileFromContainer(ctx, "/agora")
	if err != nil {
		t.Fatalf("copy /agora out of the image: %v", err)
	}
	defer r.Close()
	bin := filepath.Join(t.TempDir(), "agora")
	f, err := os.Create(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatalf("copy /agora out of the image: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("read the build information of the image's binary: %v", err)
	}
	if info.GoVersion != want {
		t.Errorf("the image's binary was built with %s, want the Dockerfile's GO_TOOLCHAIN %s", info.GoVersion, want)
	}
}

// dockerfileToolchain returns the Go toolchain the Dockerfile builds the release with.
func dockerfileToolchain(t *testing.T, root string) string {
	t.Helper()
	v, err := supplychain.DockerfileToolchain(root)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
