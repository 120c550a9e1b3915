package apilint

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"
)

func TestMain(m *testing.M) {
	code := m.Run()
	procs.Cleanup()
	os.Exit(code)
}

// startAgora starts `agora serve --demo` on 127.0.0.1 (a free port, a fresh
// SQLite data directory), waits until /readyz answers 200 and returns its base
// URL. The process is stopped when the test ends.
func startAgora(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("apilint: builds and runs the agora binary")
	}
	return procs.StartAgora(t, t.TempDir(), "").Base
}

// get returns the status of GET url, or 0 when there is no answer.
func get(url string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode
}

// fetch returns the body of GET url, failing the test unless it is 200.
func fetch(t *testing.T, url string) []byte {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, res.StatusCode, err)
	}
	return b
}
