package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// shop is a goroutine-safe client of Agora's public HTTP API, for tests that drive
// many customers at once. Unlike agora.do it returns errors instead of failing the
// test, so it can run in goroutines and across process restarts.
type shop struct {
	base   func() string // the address to use now (it changes when a process restarts)
	client *http.Client
}

// newShop returns a shop whose answers are checked against the OpenAPI document
// (checkedClient); mismatches fail t when it ends.
func newShop(t testing.TB, base func() string) *shop {
	return &shop{base: base, client: checkedClient(t, 30*time.Second)}
}

// httpError is an answer with an unexpected status.
type httpError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// statusOf returns the HTTP status of err, or 0 when it is not an httpError.
func statusOf(err error) int {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// call sends a request with an optional JSON body and bearer token, expects one of
// the want statuses and decodes the answer into out (when not nil).
func (s *shop) call(ctx context.Context, method, path, token string, body, out any, want []int, headers ...string) (http.Header, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base()+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, w := range want {
		ok = ok || res.StatusCode == w
	}
	if !ok {
		return res.Header, &httpError{Method: method, Path: path, Status: res.StatusCode, Body: string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return res.Header, &httpError{Method: method, Path: path, Status: res.StatusCode, Body: "undecodable: " + string(b)}
		}
	}
	return res.Header, nil
}

// signUp registers a customer and returns its access token.
func (s *shop) signUp(ctx context.Context, email, password string) (string, error) {
	cred := map[string]string{"email": email, "password": password}
	if _, err := s.call(ctx, http.MethodPost, "/v1/auth/register", "", cred, nil, []int{http.StatusCreated}); err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_, err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", cred, &tok, []int{http.StatusOK})
	return tok.AccessToken, err
}

func (s *shop) signIn(ctx context.Context, email, password string) (string, error) {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_, err := s.call(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password},
		&tok, []int{http.StatusOK})
	return tok.AccessToken, err
}

type orderLine struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	LineTotal money  `json:"line_total"`
}

type order struct {
	ID         string      `json:"id"`
	CustomerID string      `json:"customer_id"`
	Status     string      `json:"status"`
	Reason     string      `json:"reason"`
	Lines      []orderLine `json:"lines"`
	Total      money       `json:"total"`
	Refunded   int64       `json:"refunded"`
	Version    int64       `json:"version"`
}

type stockItem struct {
	SKU       string `json:"sku"`
	ProductID string `json:"product_id"`
	OnHand    int64  `json:"on_hand"`
	Reserved  int64  `json:"reserved"`
	Available int64  `json:"available"`
	Version   int64  `json:"version"`
}

type ledgerEntry struct {
	Kind   string `json:"kind"`
	Amount money  `json:"amount"`
}

type payment struct {
	PayableID  string        `json:"payable_id"`
	Payable    string        `json:"payable"`
	Status     string        `json:"status"`
	Authorized int64         `json:"authorized"`
	Captured   int64         `json:"captured"`
	Refunded   int64         `json:"refunded"`
	Reason     string        `json:"reason"`
	Entries    []ledgerEntry `json:"entries"`
}

type saga struct {
	OrderID string `json:"order_id"`
	State   string `json:"state"`
}

// setCart puts quantity of product in the customer's cart.
func (s *shop) setCart(ctx context.Context, token, productID string, quantity int64) error {
	_, err := s.call(ctx, http.MethodPut, "/v1/cart/items/"+productID, token, map[string]int64{"quantity": quantity}, nil,
		[]int{http.StatusOK})
	return err
}

// checkout places an order from the cart under key.
func (s *shop) checkout(ctx context.Context, token, key, paymentToken string) (order, error) {
	var o order
	_, err := s.call(ctx, http.MethodPost, "/v1/orders", token, map[string]string{"payment_token": paymentToken}, &o,
		[]int{http.StatusAccepted}, "Idempotency-Key", key)
	return o, err
}

func (s *shop) order(ctx context.Context, token, id string) (order, error) {
	var o order
	_, err := s.call(ctx, http.MethodGet, "/v1/orders/"+id, token, nil, &o, []int{http.StatusOK})
	return o, err
}

// stock returns the stock item of sku (admin).
func (s *shop) stock(ctx context.Context, admin, sku string) (stockItem, error) {
	var it stockItem
	_, err := s.call(ctx, http.MethodGet, "/v1/inventory/"+url.PathEscape(sku), admin, nil, &it, []int{http.StatusOK})
	return it, err
}

// setStock adjusts sku's on-hand stock to onHand (admin).
func (s *shop) setStock(ctx context.Context, admin, sku string, onHand int64) (stockItem, error) {
	it, err := s.stock(ctx, admin, sku)
	if err != nil || it.OnHand == onHand {
		return it, err
	}
	_, err = s.call(ctx, http.MethodPost, "/v1/inventory/"+url.PathEscape(sku)+"/adjustments", admin,
		map[string]any{"delta": onHand - it.OnHand, "reason": "test stock"}, &it, []int{http.StatusOK})
	return it, err
}

// payment returns an order's payment ledger, or a zero payment when payments
// never heard of the order (admin).
func (s *shop) payment(ctx context.Context, admin, orderID string) (payment, error) {
	var p payment
	_, err := s.call(ctx, http.MethodGet, "/v1/payments/"+orderID, admin, nil, &p, []int{http.StatusOK})
	if statusOf(err) == http.StatusNotFound {
		return payment{PayableID: orderID}, nil
	}
	return p, err
}

// sagas lists every saga in state (admin).
func (s *shop) sagas(ctx context.Context, admin, state string) ([]saga, error) {
	var all []saga
	cursor := ""
	for {
		q := url.Values{"state": {state}, "limit": {"100"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []saga `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := s.call(ctx, http.MethodGet, "/v1/ops/sagas?"+q.Encode(), admin, nil, &page, []int{http.StatusOK}); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// terminal reports whether an order's checkout has ended.
func terminal(status string) bool { return status != "" && status != "pending" }

// ledgerBook is what a test placed: every order, by id, with its customer's token.
type ledgerBook struct {
	mu     sync.Mutex
	orders map[string]string // order id → the customer's token
}

func (b *ledgerBook) add(id, token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.orders == nil {
		b.orders = map[string]string{}
	}
	b.orders[id] = token
}

// awaitTerminal polls every order until all are terminal and no saga is left
// running, or the deadline passes. It returns the final orders.
func awaitTerminal(t *testing.T, s *shop, admin string, book *ledgerBook, within time.Duration) map[string]order {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(within)
	final := map[string]order{}
	for {
		pending := 0
		for id, tok := range book.orders {
			if o, ok := final[id]; ok && terminal(o.Status) {
				continue
			}
			o, err := s.order(ctx, tok, id)
			if err != nil {
				t.Fatalf("order %s: %v", id, err)
			}
			final[id] = o
			if !terminal(o.Status) {
				pending++
			}
		}
		running := 0
		var stuck []saga
		if pending == 0 {
			for _, st := range []string{"reserving", "authorizing", "completing", "compensating"} {
				ss, err := s.sagas(ctx, admin, st)
				if err != nil {
					t.Fatalf("sagas %s: %v", st, err)
				}
				running += len(ss)
				stuck = append(stuck, ss...)
			}
			if running == 0 {
				// Confirmed orders may still be collecting refunds from cancellations;
				// re-read every order once more so the invariants see final values.
				for id, tok := range book.orders {
					o, err := s.order(ctx, tok, id)
					if err != nil {
						t.Fatalf("order %s: %v", id, err)
					}
					final[id] = o
				}
				return final
			}
		}
		if time.Now().After(deadline) {
			for i, sg := range stuck[:min(len(stuck), 3)] {
				var full json.RawMessage
				_, err := s.call(ctx, http.MethodGet, "/v1/ops/sagas/"+sg.OrderID, admin, nil, &full, []int{http.StatusOK})
				t.Logf("running saga %d: %s %v", i, full, err)
			}
			t.Fatalf("after %v: %d orders pending, %d sagas running", within, pending, running)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkInvariants checks the checkout invariants over every order a test placed:
// stock conserved and never negative, nothing left reserved, every confirmed order
// captured exactly once for its total, every rejected one with nothing captured.
// initial is each touched SKU's on-hand stock before the test; restocked orders
// (cancelled after confirmation) give their units back.
func checkInvariants(t *testing.T, s *shop, admin string, final map[string]order, initial map[string]int64) map[string]int {
	t.Helper()
	ctx := t.Context()
	sold := map[string]int64{}
	outcomes := map[string]int{}
	for id, o := range final {
		outcomes[o.Status]++
		p, err := s.payment(ctx, admin, id)
		if err != nil {
			t.Fatalf("payment of %s: %v", id, err)
		}
		if p.Status != "" && p.Payable != "order" {
			t.Errorf("order %s: its payment is a %q's", id, p.Payable)
		}
		captures := 0
		for _, e := range p.Entries {
			if e.Kind == "captured" {
				captures++
			}
		}
		switch o.Status {
		case "confirmed":
			for _, l := range o.Lines {
				sold[l.SKU] += l.Quantity
			}
			if captures != 1 || p.Captured != o.Total.Amount {
				t.Errorf("confirmed order %s (total %d): %d captures, captured %d; ledger %+v", id, o.Total.Amount, captures, p.Captured, p)
			}
			if p.Refunded > p.Captured {
				t.Errorf("order %s: refunded %d of %d captured", id, p.Refunded, p.Captured)
			}
		case "rejected":
			if p.Captured != 0 || captures != 0 {
				t.Errorf("rejected order %s (%s): captured %d; ledger %+v", id, o.Reason, p.Captured, p)
			}
			if o.Reason == "" {
				t.Errorf("rejected order %s has no reason", id)
			}
		case "cancelled":
			// Cancelled before confirmation: nothing captured. After: refunded in full
			// and restocked.
			if p.Captured != p.Refunded {
				t.Errorf("cancelled order %s: captured %d, refunded %d", id, p.Captured, p.Refunded)
			}
		default:
			t.Errorf("order %s is %q after every saga ended", id, o.Status)
		}
	}
	for sku, before := range initial {
		it, err := s.stock(ctx, admin, sku)
		if err != nil {
			t.Fatalf("stock %s: %v", sku, err)
		}
		if it.OnHand < 0 || it.Reserved < 0 || it.Available < 0 {
			t.Errorf("%s: negative stock %+v", sku, it)
		}
		if it.Reserved != 0 {
			t.Errorf("%s: %d units still reserved after every saga ended", sku, it.Reserved)
		}
		if it.OnHand != before-sold[sku] {
			t.Errorf("%s: on hand %d, want %d (before) - %d (sold to confirmed orders) = %d", sku, it.OnHand, before, sold[sku], before-sold[sku])
		}
	}
	return outcomes
}

// seq makes unique, readable test values.
type seq struct {
	mu sync.Mutex
	n  int
}

func (q *seq) next(prefix string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return prefix + strconv.Itoa(q.n)
}

// isTransient reports whether err is a connection failure (the process is down or
// restarting) rather than an answer.
func isTransient(err error) bool {
	return err != nil && statusOf(err) == 0
}
