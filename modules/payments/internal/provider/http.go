package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/agora-commerce/agora/modules/payments"
	"github.com/agora-commerce/agora/modules/payments/internal/psp"
)

// HTTP is the provider reached over the psp HTTP API (see psp.Handler). It makes
// one request per call: deadlines come from the context, retries and the circuit
// breaker from Resilient.
type HTTP struct {
	base   string
	apiKey string
	client *http.Client
}

// NewHTTP returns the provider at baseURL (e.g. http://127.0.0.1:4242), sending
// apiKey (if any) as a bearer token. client nil uses a client of its own.
func NewHTTP(baseURL, apiKey string, client *http.Client) *HTTP {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	}
	return &HTTP{base: strings.TrimRight(baseURL, "/"), apiKey: apiKey, client: client}
}

// Authorize implements Provider.
func (h *HTTP) Authorize(ctx context.Context, amount payments.Money, token, key string) (Authorization, error) {
	var a psp.Authorization
	err := h.do(ctx, http.MethodPost, "/v1/authorizations", key,
		psp.AuthorizeBody{Amount: amount.Amount, Currency: amount.Currency, Token: token}, &a)
	return fromPSPAuth(a), err
}

// Capture implements Provider.
func (h *HTTP) Capture(ctx context.Context, authID string, amount int64, key string) (Authorization, error) {
	var a psp.Authorization
	err := h.do(ctx, http.MethodPost, "/v1/authorizations/"+url.PathEscape(authID)+"/capture", key, psp.CaptureBody{Amount: amount}, &a)
	return fromPSPAuth(a), err
}

// Void implements Provider.
func (h *HTTP) Void(ctx context.Context, authID, key string) (Authorization, error) {
	var a psp.Authorization
	err := h.do(ctx, http.MethodPost, "/v1/authorizations/"+url.PathEscape(authID)+"/void", key, nil, &a)
	return fromPSPAuth(a), err
}

// Refund implements Provider.
func (h *HTTP) Refund(ctx context.Context, authID string, amount int64, key string) (Refund, error) {
	var r psp.Refund
	err := h.do(ctx, http.MethodPost, "/v1/authorizations/"+url.PathEscape(authID)+"/refunds", key, psp.RefundBody{Amount: amount}, &r)
	return Refund{ID: r.ID, Amount: r.Amount}, err
}

// AuthorizationByKey implements Provider.
func (h *HTTP) AuthorizationByKey(ctx context.Context, key string) (Authorization, error) {
	var a psp.Authorization
	err := h.do(ctx, http.MethodGet, "/v1/authorizations?idempotency_key="+url.QueryEscape(key), "", nil, &a)
	return fromPSPAuth(a), err
}

// maxAnswer bounds what is read of an answer; the provider's are a few hundred bytes.
const maxAnswer = 1 << 20

// do makes one request and decodes a 2xx answer into out; any other outcome is an
// *Error: the provider's error answer classified by status and code, or a
// retryable failure when no answer came.
func (h *HTTP) do(ctx context.Context, method, path, key string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &Error{Class: ClassPermanent, Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return &Error{Class: ClassPermanent, Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set(psp.IdempotencyHeader, key)
	}
	if h.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fromContext(err)
		}
		return &Error{Class: ClassRetryable, Err: err} // refused, reset, cut off: the call may or may not have landed
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			return fromContext(err)
		}
		return &Error{Class: ClassRetryable, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Class: ClassRetryable, Err: fmt.Errorf("decode answer: %w", err)}
		}
		return nil
	}
	var eb psp.ErrorBody
	_ = json.Unmarshal(data, &eb) // an answer that is not an ErrorBody is classified by its status alone
	return fromProvider(resp.StatusCode, eb.Error.Code,
		fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, eb.Error.Code, eb.Error.Message))
}
