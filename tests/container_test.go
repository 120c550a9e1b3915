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
	"testing"
	"time"

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

// TestContainerImage builds the project's image from its Dockerfile, runs it against
// PostgreSQL, and checks that it becomes ready and serves the demo catalog.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the project's image")
	}
	testdb.RequireDocker(t)
	pgURL := testdb.PostgresURL(t)
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
	port, err := testdb.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var buildLog strings.Builder
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			FromDockerfile: testcontainers.FromDockerfile{
				Context:        repoRoot(t),
				BuildArgs:      args,
				BuildLogWriter: &buildLog,
				// The build downloads modules through the same proxy as the host.
				BuildOptionsModifier: func(o *client.ImageBuildOptions) { o.NetworkMode = "host" },
			},
			Cmd: []string{"serve", "--demo"},
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
	t.Cleanup(func() {
		// The build stage stays behind as an untagged image of about a gigabyte;
		// remove it (and only it: it carries the stage label).
		_ = exec.Command("docker", "image", "prune", "-f", "--filter", "label=org.agora.stage=build").Run()
	})
	if err != nil {
		t.Fatalf("build or start the image: %v\nbuild log (tail):\n%s", err, tail(buildLog.String(), 3000))
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

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
