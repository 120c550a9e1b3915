package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/cli"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/internal/testlog"
)

// syncBuffer is a bytes.Buffer safe to read while the command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// TestPSPServesUntilStopped: `agora psp` serves the provider API on its address,
// with its API key taken from the environment, until its context ends.
func TestPSPServesUntilStopped(t *testing.T) {
	port, err := testdb.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	t.Setenv("AGORA_PSP_API_KEY", "sk_test")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() { exited <- cli.Run(ctx, []string{"agora", "psp", "--addr", addr}, nil, &stdout, &stderr) }()
	testlog.Eventually(t, "the simulator to listen", func() bool { return strings.Contains(stdout.String(), "listening") })

	post := func(key string) int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+"/v1/authorizations",
			strings.NewReader(`{"amount":100,"currency":"EUR","token":"tok_visa"}`))
		req.Header.Set("Idempotency-Key", "k1")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("sk_test"); got != http.StatusCreated {
		t.Errorf("authorize: %d", got)
	}
	if got := post("wrong"); got != http.StatusUnauthorized {
		t.Errorf("authorize with a wrong key: %d", got)
	}
	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agora psp did not stop")
	}
}

func TestPSPRejectsBadFailureRate(t *testing.T) {
	code, _, errOut := run(t, "psp", "--failure-rate", "1.5")
	if code != 1 || !strings.Contains(errOut, "failure-rate") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
