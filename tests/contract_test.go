package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/agora-commerce/agora/tests/apicheck"
)

// The contract check: every HTTP client of this package carries an
// apicheck.Transport, so every answer the suites get is checked against the
// OpenAPI document, and a test fails at its end with the list of what differed.
//
// The document is the snapshot api/openapi.yaml, which TestOpenAPISnapshot
// (internal/app) keeps byte-equal to what the code generates and
// tests/apilint's TestServedDocumentIsTheSnapshot shows the binary serves. The
// snapshot rather than each server's /openapi.json because a split process
// serves only its own modules' operations, and behind the topology tests'
// balancer the answer to one request may come from any of them: the whole
// document is the one a client reads.

var (
	contractOnce    sync.Once
	contractChecker *apicheck.Checker
	contractErr     error
)

// contract returns the checker for api/openapi.yaml, loaded once per test binary.
func contract(t testing.TB) *apicheck.Checker {
	t.Helper()
	contractOnce.Do(func() {
		doc, err := os.ReadFile(filepath.Join(procs.RepoRoot(t), "api", "openapi.yaml"))
		if err != nil {
			contractErr = err
			return
		}
		contractChecker, contractErr = apicheck.New(doc)
	})
	if contractErr != nil {
		t.Fatalf("load the OpenAPI document: %v", contractErr)
	}
	return contractChecker
}

// checkedClient returns an HTTP client whose answers are checked against the
// OpenAPI document; when t ends, every mismatch it saw fails t with a readable
// list (operation, status, what is wrong, how often, an example request).
func checkedClient(t testing.TB, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &apicheck.Transport{Checker: contract(t)}
	t.Cleanup(func() {
		if ms := tr.Mismatches(); len(ms) > 0 {
			t.Errorf("contract: %s", apicheck.Report(ms))
		}
	})
	return &http.Client{Timeout: timeout, Transport: tr}
}
