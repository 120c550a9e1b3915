package tests

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/agora-commerce/agora/internal/testdb"
)

// The containers layout of the topology matrix: the project's own image (built from
// its Dockerfile) runs the broker and three services, each with its own modules, as
// a container platform would run them. The first service keeps its modules' SQLite
// files inside its container; the other two keep theirs in PostgreSQL (a fresh
// database, a schema per module), so the layout also proves a split deployment
// whose services use different stores. Containers use host networking and listen
// on 127.0.0.1 ports the test picks, so no traffic leaves the loopback interface
// and no port mapping is needed.

// containerLayout is what each service container runs (its AGORA_MODULES) and
// whether its modules keep their data in PostgreSQL. Identity runs in the first,
// which signs tokens; the others only verify them.
var containerLayout = []struct {
	modules  string
	postgres bool
}{
	{"identity,catalog", false},
	{"inventory,payments", true},
	{"orders,notifications", true},
	{"fleet,rides", true},
}

// startContainers starts `agora broker` and one `agora serve` per entry of
// containerLayout from the project's image, and returns the deployment with the
// last service (which runs neither identity, catalog nor inventory) as its entry.
// Every container is removed when the test ends.
func startContainers(t *testing.T) *deployment {
	t.Helper()
	image := projectImage(t)
	pgURL := freshDatabase(t, testdb.PostgresURL(t))
	privatePEM, publicPEM := signingKeyPair(t)

	brokerAddr := procs.FreeAddr(t)
	runContainer(t, "broker", testcontainers.ContainerRequest{
		Image:      image,
		Cmd:        []string{"broker", "--broker-addr", brokerAddr},
		WaitingFor: wait.ForLog("broker: NATS with JetStream listening").WithStartupTimeout(time.Minute),
	})

	var entry *agora
	for i, svc := range containerLayout {
		modules := svc.modules
		addr := procs.FreeAddr(t)
		env := map[string]string{
			"AGORA_HTTP_ADDR":        addr,
			"AGORA_BUS_URL":          "nats://" + brokerAddr,
			"AGORA_MODULES":          modules,
			"AGORA_SHUTDOWN_TIMEOUT": shutdownTimeout.String(),
		}
		if svc.postgres {
			env["AGORA_DATABASE_URL"] = pgURL
		}
		for _, kv := range commonEnv {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		// The key pair is the deployment's secret: identity signs with the private
		// key, every other service verifies with the public one.
		key := testcontainers.ContainerFile{Reader: bytes.NewReader(publicPEM), ContainerFilePath: "/keys/jwt-public.pem", FileMode: 0o444}
		env["AGORA_JWT_PUBLIC_KEY_FILE"] = key.ContainerFilePath
		if strings.Contains(modules, "identity") {
			key = testcontainers.ContainerFile{Reader: bytes.NewReader(privatePEM), ContainerFilePath: "/keys/jwt-private.pem", FileMode: 0o444}
			delete(env, "AGORA_JWT_PUBLIC_KEY_FILE")
			env["AGORA_JWT_PRIVATE_KEY_FILE"] = key.ContainerFilePath
		}
		runContainer(t, fmt.Sprintf("service %d (%s)", i, modules), testcontainers.ContainerRequest{
			Image:      image,
			Cmd:        []string{"serve", "--demo"},
			Env:        env,
			Files:      []testcontainers.ContainerFile{key},
			WaitingFor: wait.ForLog("agora is ready").WithStartupTimeout(time.Minute),
		})
		entry = &agora{t: t, base: "http://" + addr, client: checkedClient(t, 15*time.Second)}
		awaitReady(t, entry)
	}
	tok, err := entry.login("admin@example.com", "demo-admin-password")
	if err != nil {
		t.Fatalf("sign in as the demo admin through %s: %v", entry.base, err)
	}
	entry.token = tok
	return &deployment{entry: entry}
}

// freshDatabase creates a new database in the PostgreSQL server at superURL and
// returns its URL: the layout's modules create their schemas in it, apart from
// every other test's.
func freshDatabase(t *testing.T, superURL string) string {
	return testdb.FreshDatabase(t, superURL, "topology_")
}

// runContainer starts req with host networking and removes the container when the
// test ends, showing the tail of its log first if the test failed.
func runContainer(t *testing.T, name string, req testcontainers.ContainerRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	req.HostConfigModifier = func(hc *container.HostConfig) { hc.NetworkMode = "host" }
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	testcontainers.CleanupContainer(t, ctr)
	t.Cleanup(func() {
		if t.Failed() && ctr != nil {
			t.Logf("%s log (tail):\n%s", name, containerLog(ctr))
		}
	})
	if err != nil {
		log := ""
		if ctr != nil {
			log = containerLog(ctr)
		}
		t.Fatalf("start %s: %v\nlog (tail):\n%s", name, err, log)
	}
}

// containerLog returns the last few kilobytes of a container's output.
func containerLog(ctr testcontainers.Container) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return tail(string(b), 4000)
}

// awaitReady waits until a's /readyz answers 200 (database and bus reachable).
func awaitReady(t *testing.T, a *agora) {
	t.Helper()
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(50 * time.Millisecond) {
		res, err := a.client.Get(a.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 within %v (last: %v)", a.base, readyTimeout, err)
		}
	}
}

// signingKeyPair returns a fresh Ed25519 key pair for access tokens: the private
// key in PKCS#8 PEM and the public key in PKIX PEM, as Agora reads them.
func signingKeyPair(t *testing.T) (private, public []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}
