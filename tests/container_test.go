package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/agora-commerce/agora/internal/testdb"
)

// Image variables for the container test: the base images of the project's
// Dockerfile. They default to the Dockerfile's own (public) defaults; a machine
// without a registry points them at local images (tests/images/build.sh does).
const (
	goImageEnv      = "AGORA_TEST_GO_IMAGE"
	runtimeImageEnv = "AGORA_TEST_RUNTIME_IMAGE"
)

// TestContainerImage runs the project's image (built from its Dockerfile) against
// PostgreSQL, and checks that it becomes ready and serves the demo catalog.
func TestContainerImage(t *testing.T) {
	image := projectImage(t)
	pgURL := testdb.PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	port, err := testdb.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: image,
			Cmd:   []string{"serve", "--demo"},
			Env: map[string]string{
				"AGORA_DATABASE_URL": pgURL,
				"AGORA_HTTP_ADDR":    addr, // host networking: loopback only
			},
			HostConfigModifier: func(hc *container.HostConfig) { hc.NetworkMode = "host" },
			WaitingFor:         wait.ForLog("agora is ready").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("start the image: %v", err)
	}

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	if status, body := get("/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz = %d: %s", status, body)
	}
	status, body := get("/v1/products?category=books&limit=100")
	var page struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) == 0 {
		t.Fatalf("GET /v1/products = %d %s, want the demo books", status, body)
	}
	if status, body := get("/v1/products/" + page.Items[0].ID); status != http.StatusOK || !strings.Contains(string(body), page.Items[0].Name) {
		t.Fatalf("GET /v1/products/{id} = %d %s", status, body)
	}
}

// The project's image is built once per test run, on first use, and shared by every
// test that runs it (the build takes a minute or more).
var projectImg struct {
	once  sync.Once
	image string
	err   error
}

// projectImageRef names the image the tests build. Rebuilding moves the tag; the
// image it leaves behind is pruned by its label.
const (
	projectImageRef   = "agora-test/agora:e2e"
	projectImageLabel = "org.agora.test-image"
)

// projectImage builds the project's image from its Dockerfile (once per test run)
// and returns its reference. It skips the test in -short mode and, without Docker,
// unless AGORA_TEST_REQUIRE_DOCKER=1.
func projectImage(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the project's image")
	}
	testdb.RequireDocker(t)
	root := procs.RepoRoot(t)
	projectImg.once.Do(func() { projectImg.image, projectImg.err = buildProjectImage(root) })
	if projectImg.err != nil {
		t.Fatal(projectImg.err)
	}
	return projectImg.image
}

func buildProjectImage(root string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	args := map[string]*string{}
	for env, arg := range map[string]string{goImageEnv: "GO_IMAGE", runtimeImageEnv: "RUNTIME_IMAGE"} {
		if v := os.Getenv(env); v != "" {
			args[arg] = &v
		}
	}
	if out, err := exec.Command("go", "env", "GOPROXY").Output(); err == nil {
		proxy := strings.TrimSpace(string(out))
		args["GOPROXY"] = &proxy
	}
	repo, tag, _ := strings.Cut(projectImageRef, ":")
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", err
	}
	defer p.Close()
	var buildLog strings.Builder
	image, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context:        root,
		Repo:           repo,
		Tag:            tag,
		BuildArgs:      args,
		BuildLogWriter: &buildLog,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			// The build downloads modules through the same proxy as the host.
			o.NetworkMode = "host"
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			o.Labels[projectImageLabel] = "true"
		},
	}})
	// The build stage stays behind as an untagged image of about a gigabyte, and a
	// rebuild leaves the previous image untagged; remove both (and only them: each
	// carries its label, and prune keeps tagged images).
	for _, label := range []string{"org.agora.stage=build", projectImageLabel} {
		_ = exec.Command("docker", "image", "prune", "-f", "--filter", "label="+label).Run()
	}
	if err != nil {
		return "", fmt.Errorf("build the project's image: %v\nbuild log (tail):\n%s", err, tail(buildLog.String(), 3000))
	}
	return image, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
