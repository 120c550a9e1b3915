package psp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// IdempotencyHeader carries the idempotency key of every POST.
const IdempotencyHeader = "Idempotency-Key"

// The HTTP API's request bodies.
type (
	// AuthorizeBody is the body of POST /v1/authorizations.
	AuthorizeBody struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
		Token    string `json:"token"`
	}
	// CaptureBody is the body of POST /v1/authorizations/{id}/capture (may be empty).
	CaptureBody struct {
		Amount int64 `json:"amount"` // 0: the whole authorization
	}
	// RefundBody is the body of POST /v1/authorizations/{id}/refunds.
	RefundBody struct {
		Amount int64 `json:"amount"`
	}
	// ErrorBody is every error answer: {"error": {"code": …, "message": …}}.
	ErrorBody struct {
		Error Error `json:"error"`
	}
)

// Handler returns the provider's HTTP JSON API in front of s:
//
//	POST /v1/authorizations                  AuthorizeBody → 201 Authorization
//	GET  /v1/authorizations?idempotency_key= the authorization that key's Authorize made
//	GET  /v1/authorizations/{id}             Authorization
//	POST /v1/authorizations/{id}/capture     CaptureBody → Authorization
//	POST /v1/authorizations/{id}/void        → Authorization
//	POST /v1/authorizations/{id}/refunds     RefundBody → 201 Refund
//
// Every POST needs an Idempotency-Key header. With apiKey set, every call needs
// "Authorization: Bearer <apiKey>". Errors are ErrorBody with the Error's status:
// 402 for declines, 400 and 422 for bad input, 409 for the wrong state, 500 and
// 503 for failures.
func Handler(s *Simulator, apiKey string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/authorizations", func(w http.ResponseWriter, r *http.Request) {
		var b AuthorizeBody
		if !decode(w, r, &b) {
			return
		}
		a, err := s.Authorize(r.Context(), b.Amount, b.Currency, b.Token, r.Header.Get(IdempotencyHeader))
		reply(w, r, http.StatusCreated, a, err)
	})
	mux.HandleFunc("GET /v1/authorizations", func(w http.ResponseWriter, r *http.Request) {
		a, err := s.AuthorizationByKey(r.Context(), r.URL.Query().Get("idempotency_key"))
		reply(w, r, http.StatusOK, a, err)
	})
	mux.HandleFunc("GET /v1/authorizations/{id}", func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Get(r.Context(), r.PathValue("id"))
		reply(w, r, http.StatusOK, a, err)
	})
	mux.HandleFunc("POST /v1/authorizations/{id}/capture", func(w http.ResponseWriter, r *http.Request) {
		var b CaptureBody
		if !decode(w, r, &b) {
			return
		}
		a, err := s.Capture(r.Context(), r.PathValue("id"), b.Amount, r.Header.Get(IdempotencyHeader))
		reply(w, r, http.StatusOK, a, err)
	})
	mux.HandleFunc("POST /v1/authorizations/{id}/void", func(w http.ResponseWriter, r *http.Request) {
		a, err := s.Void(r.Context(), r.PathValue("id"), r.Header.Get(IdempotencyHeader))
		reply(w, r, http.StatusOK, a, err)
	})
	mux.HandleFunc("POST /v1/authorizations/{id}/refunds", func(w http.ResponseWriter, r *http.Request) {
		var b RefundBody
		if !decode(w, r, &b) {
			return
		}
		ref, err := s.Refund(r.Context(), r.PathValue("id"), b.Amount, r.Header.Get(IdempotencyHeader))
		reply(w, r, http.StatusCreated, ref, err)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no such endpoint"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if apiKey != "" {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(apiKey)) != 1 {
				writeError(w, errorf(http.StatusUnauthorized, CodeUnauthorized, "send Authorization: Bearer <API key>"))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// decode reads a JSON body of at most 64 KiB into v (an empty body leaves v zero),
// answering 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	err := json.NewDecoder(r.Body).Decode(v)
	// An empty body (io.EOF) is no body: v stays zero.
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, errorf(http.StatusBadRequest, CodeInvalidRequest, "the body is not valid JSON: %v", err))
		return false
	}
	return true
}

func reply(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		var pe *Error
		switch {
		case errors.As(err, &pe):
			writeError(w, pe)
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || r.Context().Err() != nil:
			// The client has gone: nobody reads this answer.
			writeError(w, errorf(http.StatusServiceUnavailable, CodeUnavailable, "the call was abandoned"))
		default:
			writeError(w, errorf(http.StatusInternalServerError, CodeProcessingError, "internal error"))
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: *e})
}
