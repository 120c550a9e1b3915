package psp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

func code(err error) string {
	var pe *psp.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestTokens(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{SlowLatency: 20 * time.Millisecond})
	tests := []struct {
		token    string
		wantCode string
		wantHeld bool
	}{
		{psp.TokenVisa, "", true},
		{psp.TokenSlow, "", true},
		{psp.TokenDecline, psp.CodeCardDeclined, false},
		{psp.TokenInsufficientFunds, psp.CodeInsufficientFunds, false},
		{psp.TokenError, psp.CodeProcessingError, false},
		{"tok_nonsense", psp.CodeInvalidToken, false},
		{"", psp.CodeInvalidToken, false},
	}
	for _, tc := range tests {
		t.Run(tc.token, func(t *testing.T) {
			a, err := sim.Authorize(t.Context(), 500, "EUR", tc.token, "k-"+tc.token)
			if code(err) != tc.wantCode || (tc.wantCode == "" && err != nil) {
				t.Fatalf("err = %v, want code %q", err, tc.wantCode)
			}
			if held := a.ID != ""; held != tc.wantHeld {
				t.Fatalf("authorization %+v, want held=%v", a, tc.wantHeld)
			}
			if tc.wantHeld && (a.Amount != 500 || a.Currency != "EUR" || a.State != psp.StateAuthorized) {
				t.Errorf("authorization = %+v", a)
			}
		})
	}
}

func TestTimeoutTokenHoldsAndNeverAnswers(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	for range 2 { // a retry with the same key never answers either, and holds nothing more
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		_, err := sim.Authorize(ctx, 700, "EUR", psp.TokenTimeout, "order-1:authorize")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the caller's deadline", err)
		}
	}
	a, err := sim.AuthorizationByKey(t.Context(), "order-1:authorize")
	if err != nil || a.Amount != 700 || a.State != psp.StateAuthorized {
		t.Fatalf("AuthorizationByKey = %+v, %v; want the hold the unanswered call made", a, err)
	}
	if n := len(sim.Authorizations()); n != 1 {
		t.Errorf("%d authorizations, want 1", n)
	}
	if _, err := sim.AuthorizationByKey(t.Context(), "order-2:authorize"); code(err) != psp.CodeNotFound {
		t.Errorf("AuthorizationByKey of an unused key: err = %v, want not found", err)
	}
}

func TestIdempotency(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	ctx := t.Context()
	a1, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, "k1")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, "k1")
	if err != nil || a2.ID != a1.ID {
		t.Fatalf("same key again: %+v, %v; want %s", a2, err, a1.ID)
	}
	if _, err := sim.Authorize(ctx, 200, "EUR", psp.TokenVisa, "k1"); code(err) != psp.CodeIdempotencyMismatch {
		t.Fatalf("same key, other amount: err = %v, want %s", err, psp.CodeIdempotencyMismatch)
	}
	// A decline is an answer: the same key gets it again.
	if _, err := sim.Authorize(ctx, 100, "EUR", psp.TokenDecline, "k2"); code(err) != psp.CodeCardDeclined {
		t.Fatal(err)
	}
	if _, err := sim.Authorize(ctx, 100, "EUR", psp.TokenDecline, "k2"); code(err) != psp.CodeCardDeclined {
		t.Fatalf("declined key again: %v", err)
	}
	if _, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, ""); code(err) != psp.CodeIdempotencyRequired {
		t.Fatalf("no key: %v", err)
	}
	if n := len(sim.Authorizations()); n != 1 {
		t.Errorf("%d authorizations, want 1", n)
	}

	// Concurrent calls with one key make one authorization.
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Go(func() {
			a, err := sim.Authorize(ctx, 300, "EUR", psp.TokenVisa, "k3")
			if err != nil {
				t.Error(err)
			}
			ids[i] = a.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent calls with one key got %v", ids)
		}
	}
	if n := len(sim.Authorizations()); n != 2 {
		t.Errorf("%d authorizations, want 2", n)
	}
}

func TestProviderInvariants(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	ctx := t.Context()
	a, err := sim.Authorize(ctx, 1000, "EUR", psp.TokenVisa, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Capture(ctx, a.ID, 1001, "c0"); code(err) != psp.CodeAmountTooLarge {
		t.Errorf("capture beyond authorized: %v", err)
	}
	if _, err := sim.Refund(ctx, a.ID, 10, "r0"); code(err) != psp.CodeInvalidState {
		t.Errorf("refund before capture: %v", err)
	}
	c, err := sim.Capture(ctx, a.ID, 0, "c1")
	if err != nil || c.Captured != 1000 || c.State != psp.StateCaptured {
		t.Fatalf("capture: %+v, %v", c, err)
	}
	if c2, err := sim.Capture(ctx, a.ID, 0, "c1"); err != nil || c2.Captured != 1000 {
		t.Errorf("capture again with its key: %+v, %v", c2, err)
	}
	if _, err := sim.Capture(ctx, a.ID, 0, "c2"); code(err) != psp.CodeInvalidState {
		t.Errorf("second capture: %v", err)
	}
	if _, err := sim.Void(ctx, a.ID, "v1"); code(err) != psp.CodeInvalidState {
		t.Errorf("void after capture: %v", err)
	}
	if _, err := sim.Refund(ctx, a.ID, 600, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Refund(ctx, a.ID, 600, "r2"); code(err) != psp.CodeAmountTooLarge {
		t.Errorf("refund beyond captured: %v", err)
	}
	if _, err := sim.Refund(ctx, a.ID, 600, "r1"); err != nil {
		t.Errorf("same refund again with its key: %v", err)
	}
	if _, err := sim.Refund(ctx, a.ID, 400, "r3"); err != nil {
		t.Fatal(err)
	}
	if got, _ := sim.Get(ctx, a.ID); got.Refunded != 1000 {
		t.Errorf("refunded %d, want 1000", got.Refunded)
	}

	b, _ := sim.Authorize(ctx, 50, "EUR", psp.TokenVisa, "b")
	if v, err := sim.Void(ctx, b.ID, "vb"); err != nil || v.State != psp.StateVoided {
		t.Fatalf("void: %+v, %v", v, err)
	}
	if _, err := sim.Void(ctx, b.ID, "vb2"); err != nil {
		t.Errorf("void of a voided authorization: %v", err)
	}
	if _, err := sim.Capture(ctx, b.ID, 0, "cb"); code(err) != psp.CodeInvalidState {
		t.Errorf("capture after void: %v", err)
	}
}

func TestInjectedFailuresAreNotRecorded(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{FailureRate: 1})
	if _, err := sim.Authorize(t.Context(), 100, "EUR", psp.TokenVisa, "k"); code(err) != psp.CodeUnavailable {
		t.Fatalf("err = %v, want %s", err, psp.CodeUnavailable)
	}
	if n := len(sim.Authorizations()); n != 0 {
		t.Errorf("%d authorizations after a failure", n)
	}
}

// do sends a request to h and returns the status and decoded body.
func do(t *testing.T, srv *httptest.Server, method, path, key, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(psp.IdempotencyHeader, key)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestHandler(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	srv := httptest.NewServer(psp.Handler(sim, "sk_test"))
	defer srv.Close()
	const bearer = "Bearer sk_test"

	status, body := do(t, srv, "POST", "/v1/authorizations", "k1", "", `{"amount":100,"currency":"EUR","token":"tok_visa"}`)
	if status != http.StatusUnauthorized || errCode(body) != psp.CodeUnauthorized {
		t.Fatalf("without the API key: %d %v", status, body)
	}
	status, body = do(t, srv, "POST", "/v1/authorizations", "k1", bearer, `{"amount":100,"currency":"EUR","token":"tok_visa"}`)
	if status != http.StatusCreated {
		t.Fatalf("authorize: %d %v", status, body)
	}
	id, _ := body["id"].(string)

	tests := []struct {
		name, method, path, key, body string
		wantStatus                    int
		wantCode                      string
	}{
		{"no idempotency key", "POST", "/v1/authorizations", "", `{"amount":100,"currency":"EUR","token":"tok_visa"}`, 400, psp.CodeIdempotencyRequired},
		{"decline", "POST", "/v1/authorizations", "k2", `{"amount":100,"currency":"EUR","token":"tok_decline"}`, 402, psp.CodeCardDeclined},
		{"insufficient funds", "POST", "/v1/authorizations", "k3", `{"amount":100,"currency":"EUR","token":"tok_insufficient_funds"}`, 402, psp.CodeInsufficientFunds},
		{"unknown token", "POST", "/v1/authorizations", "k4", `{"amount":100,"currency":"EUR","token":"tok_x"}`, 400, psp.CodeInvalidToken},
		{"bad amount", "POST", "/v1/authorizations", "k5", `{"amount":0,"currency":"EUR","token":"tok_visa"}`, 400, psp.CodeInvalidRequest},
		{"bad json", "POST", "/v1/authorizations", "k6", `{"amount":`, 400, psp.CodeInvalidRequest},
		{"processing error", "POST", "/v1/authorizations", "k7", `{"amount":100,"currency":"EUR","token":"tok_error"}`, 500, psp.CodeProcessingError},
		{"key reused", "POST", "/v1/authorizations", "k1", `{"amount":999,"currency":"EUR","token":"tok_visa"}`, 422, psp.CodeIdempotencyMismatch},
		{"capture too much", "POST", "/v1/authorizations/" + id + "/capture", "c0", `{"amount":101}`, 422, psp.CodeAmountTooLarge},
		{"capture", "POST", "/v1/authorizations/" + id + "/capture", "c1", ``, 200, ""},
		{"capture twice", "POST", "/v1/authorizations/" + id + "/capture", "c2", ``, 409, psp.CodeInvalidState},
		{"refund", "POST", "/v1/authorizations/" + id + "/refunds", "r1", `{"amount":40}`, 201, ""},
		{"refund too much", "POST", "/v1/authorizations/" + id + "/refunds", "r2", `{"amount":61}`, 422, psp.CodeAmountTooLarge},
		{"void captured", "POST", "/v1/authorizations/" + id + "/void", "v1", ``, 409, psp.CodeInvalidState},
		{"unknown authorization", "POST", "/v1/authorizations/auth_nope/void", "v2", ``, 404, psp.CodeNotFound},
		{"by key", "GET", "/v1/authorizations?idempotency_key=k1", "", ``, 200, ""},
		{"by unknown key", "GET", "/v1/authorizations?idempotency_key=k2", "", ``, 404, psp.CodeNotFound},
		{"get", "GET", "/v1/authorizations/" + id, "", ``, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, srv, tc.method, tc.path, tc.key, bearer, tc.body)
			if status != tc.wantStatus || errCode(body) != tc.wantCode {
				t.Errorf("%d %v, want %d %q", status, body, tc.wantStatus, tc.wantCode)
			}
		})
	}
}

// A process restarted with the in-process simulator forgets what it authorized; it
// must still capture, void and refund what the earlier run authorized, and refuse
// ids it could never have made.
func TestRestartedSimulatorKnowsEarlierAuthorizations(t *testing.T) {
	ctx := t.Context()
	first := psp.NewSimulator(psp.Config{})
	a, err := first.Authorize(ctx, 1250, "EUR", psp.TokenVisa, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := first.Authorize(ctx, 700, "EUR", psp.TokenVisa, "b")
	if err != nil {
		t.Fatal(err)
	}

	restarted := psp.NewSimulator(psp.Config{})
	c, err := restarted.Capture(ctx, a.ID, 0, "c")
	if err != nil || c.Captured != 1250 || c.Currency != "EUR" {
		t.Fatalf("capture after restart: %+v, %v", c, err)
	}
	if _, err := restarted.Refund(ctx, a.ID, 1251, "r0"); code(err) != psp.CodeAmountTooLarge {
		t.Errorf("refund beyond the authorization after restart: %v", err)
	}
	if v, err := restarted.Void(ctx, b.ID, "v"); err != nil || v.State != psp.StateVoided {
		t.Errorf("void after restart: %+v, %v", v, err)
	}
	// Refund of one captured before the restart: the simulator bounds it by the amount.
	again := psp.NewSimulator(psp.Config{})
	if r, err := again.Refund(ctx, a.ID, 1250, "r1"); err != nil || r.Amount != 1250 {
		t.Errorf("refund after a second restart: %+v, %v", r, err)
	}
	for _, id := range []string{"auth_nothex", "auth_x_0_EUR", "auth_x_-5_EUR", "re_x_10_EUR", "auth_x_10_EURO"} {
		if _, err := again.Capture(ctx, id, 0, "k-"+id); code(err) != psp.CodeNotFound {
			t.Errorf("capture of %q: %v, want not found", id, err)
		}
	}
}

// TestOutage: while the simulator is down every call fails with a 503 before it
// does anything, and nothing is recorded under its key: once the outage ends, the
// same call goes through.
func TestOutage(t *testing.T) {
	sim := psp.NewSimulator(psp.Config{})
	ctx := t.Context()
	held, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, "before")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetOutage(true)
	if !sim.Outage() {
		t.Fatal("Outage() = false after SetOutage(true)")
	}
	var pe *psp.Error
	if _, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, "k"); !errors.As(err, &pe) || pe.Status != http.StatusServiceUnavailable || pe.Code != psp.CodeUnavailable {
		t.Fatalf("authorize during the outage: %v, want a 503 %s", err, psp.CodeUnavailable)
	}
	if _, err := sim.Capture(ctx, held.ID, 0, "capture"); code(err) != psp.CodeUnavailable {
		t.Errorf("capture during the outage: %v", err)
	}
	if len(sim.Authorizations()) != 1 {
		t.Errorf("the outage held %d authorizations, want only the one before", len(sim.Authorizations())-1)
	}
	sim.SetOutage(false)
	if _, err := sim.Authorize(ctx, 100, "EUR", psp.TokenVisa, "k"); err != nil {
		t.Errorf("the same call after the outage: %v", err)
	}
}
