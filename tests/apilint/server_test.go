package apilint

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binDir   string // holds the agora binary; created and removed by TestMain
	build    sync.Once
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agora-apilint-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// agoraBinary builds ./cmd/agora once, on first use.
func agoraBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("apilint: builds and runs the agora binary")
	}
	root := repoRoot(t)
	build.Do(func() {
		bin := filepath.Join(binDir, "agora")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/agora")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/agora: %v\n%s", err, out)
			return
		}
		binPath = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startAgora starts `agora serve --demo` on 127.0.0.1 (a free port, a fresh
// SQLite data directory), waits until /readyz answers 200 and returns its base
// URL. The process is stopped when the test ends.
func startAgora(t *testing.T) string {
	t.Helper()
	bin := agoraBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--demo")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AGORA_") }),
		"AGORA_DATA_DIR="+t.TempDir(), "AGORA_HTTP_ADDR="+addr, "AGORA_LOG_FORMAT=json", "AGORA_SHUTDOWN_TIMEOUT=5s")
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("agora did not stop within 15 s of SIGTERM; killed it")
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("agora exited before it was ready:\n%s", logs.String())
		default:
		}
		if get(base+"/readyz") == http.StatusOK {
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("agora: /readyz not 200 within 30 s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// syncBuffer is a process's stderr, written by the process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
