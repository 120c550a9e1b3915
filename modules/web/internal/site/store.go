package site

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/catalog"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/orders"
)

// pageSize is how many products a catalog page shows.
const pageSize = 12

// errInvalidForm answers a form whose fields are not what the page sends.
var errInvalidForm = message.NewError(message.Invalid, "web.invalid_form", "the form was not filled in as expected; please go back and try again")

// homePage is the catalog: a search and a page of products.
type homePage struct {
	Query, Category string
	Products        []catalog.Product
	Next            string // the query string of the next page; empty on the last
}

func (homePage) PageTitle() string { return "Shop" }

// home lists the catalog, searched and filtered by the query string, with each
// product's availability as catalog last heard it from inventory.
func (s *Site) home(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	data := homePage{Query: bounded(q.Get("q"), catalog.MaxQueryLen), Category: bounded(q.Get("category"), 64)}
	page, err := bus.Call(r.Context(), s.bus, catalog.ListProductsRequest, catalog.ListProducts{
		Query: data.Query, Category: data.Category, After: bounded(q.Get("after"), 64), Limit: pageSize})
	if err != nil {
		return err
	}
	data.Products = page.Items
	if page.NextAfter != "" {
		next := url.Values{"after": {page.NextAfter}}
		if data.Query != "" {
			next.Set("q", data.Query)
		}
		if data.Category != "" {
			next.Set("category", data.Category)
		}
		data.Next = next.Encode()
	}
	s.render(w, r, v, http.StatusOK, "home", data)
	return nil
}

// bounded cuts s to at most n bytes (at a rune boundary): what a page passes on
// from its URL is never larger than the contracts accept.
func bounded(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// productPage is one product.
type productPage struct {
	Product catalog.Product
	MaxQty  int64
}

func (p productPage) PageTitle() string { return p.Product.Name }

func (s *Site) product(w http.ResponseWriter, r *http.Request, v *visit) error {
	p, err := bus.Call(r.Context(), s.bus, catalog.GetProductRequest, catalog.GetProduct{ID: r.PathValue("id")})
	if err != nil {
		return err
	}
	maxQty := int64(orders.MaxQuantity)
	if a := p.Availability; a != nil && a.Status == catalog.AvailabilityInStock {
		maxQty = min(maxQty, max(a.Available, 1))
	}
	s.render(w, r, v, http.StatusOK, "product", productPage{Product: p, MaxQty: maxQty})
	return nil
}

// authPage is the sign-in and sign-up form. It never carries the password back.
type authPage struct {
	SignUp      bool
	Email, Next string
	Error       string
}

func (p authPage) PageTitle() string {
	if p.SignUp {
		return "Create an account"
	}
	return "Sign in"
}

func (s *Site) signInPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	s.render(w, r, v, http.StatusOK, "signin", authPage{Next: localPath(r.URL.Query().Get("next"))})
	return nil
}

func (s *Site) signUpPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	s.render(w, r, v, http.StatusOK, "signin", authPage{SignUp: true, Next: localPath(r.URL.Query().Get("next"))})
	return nil
}

// signIn exchanges the form's credentials for tokens, keeps them in the session
// cookie and goes on to the page the visitor came for.
func (s *Site) signIn(w http.ResponseWriter, r *http.Request, v *visit) error {
	form := authPage{Email: bounded(r.PostFormValue("email"), identity.MaxEmailLen), Next: localPath(r.PostFormValue("next"))}
	return s.startSession(w, r, v, form, func() (identity.Tokens, error) {
		return bus.Call(r.Context(), s.bus, identity.LoginRequest,
			identity.Login{Email: form.Email, Password: r.PostFormValue("password")})
	})
}

// signUp creates a customer account and signs it in.
func (s *Site) signUp(w http.ResponseWriter, r *http.Request, v *visit) error {
	form := authPage{SignUp: true, Email: bounded(r.PostFormValue("email"), identity.MaxEmailLen), Next: localPath(r.PostFormValue("next"))}
	password := r.PostFormValue("password")
	return s.startSession(w, r, v, form, func() (identity.Tokens, error) {
		if password != r.PostFormValue("confirm") {
			return identity.Tokens{}, identity.ErrInvalidInput.Withf("the two passwords are not the same")
		}
		if _, err := bus.Call(r.Context(), s.bus, identity.RegisterRequest,
			identity.Register{Email: form.Email, Password: password}); err != nil {
			return identity.Tokens{}, err
		}
		return bus.Call(r.Context(), s.bus, identity.LoginRequest, identity.Login{Email: form.Email, Password: password})
	})
}

// startSession runs a sign-in (within the attempt limits) and, on success, sets
// the session cookie and redirects; a refusal shows the form again with why.
func (s *Site) startSession(w http.ResponseWriter, r *http.Request, v *visit, form authPage,
	signIn func() (identity.Tokens, error)) error {
	err := s.signIns.allow(r.Context(), form.Email)
	var t identity.Tokens
	if err == nil {
		t, err = signIn()
	}
	if err != nil {
		be := message.AsError(err)
		switch be.Kind {
		case message.Invalid, message.Unauthenticated, message.Conflict, message.Overloaded:
			form.Error = be.Message
			status, _ := errorStatus(be.Kind)
			if errors.Is(err, errTooManyAttempts) {
				status = http.StatusTooManyRequests
				w.Header().Set("Retry-After", "60")
			}
			s.render(w, r, v, status, "signin", form)
			return nil
		}
		return err
	}
	writeSession(w, r, t)
	http.Redirect(w, r, form.Next, http.StatusSeeOther)
	return nil
}

// signOut revokes the session's refresh tokens at identity (so a copied cookie
// is worth nothing) and forgets the cookie.
func (s *Site) signOut(w http.ResponseWriter, r *http.Request, _ *visit) error {
	if c, err := r.Cookie(cookieName); err == nil && len(c.Value) <= maxCookieLen {
		if _, refresh, ok := strings.Cut(c.Value, "|"); ok && refresh != "" {
			if _, err := bus.Call(r.Context(), s.bus, identity.LogoutRequest, identity.Logout{RefreshToken: refresh}); err != nil {
				return err // the session stays: the visitor can try again
			}
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// cartPage is the cart, with the checkout's test cards when it is the checkout.
type cartPage struct {
	Cart           orders.Cart
	Checkout       bool
	Cards          []testCard
	IdempotencyKey string
	Error          string
}

func (p cartPage) PageTitle() string {
	if p.Checkout {
		return "Checkout"
	}
	return "Your cart"
}

func (s *Site) cart(w http.ResponseWriter, r *http.Request, v *visit) error {
	c, err := bus.Call(r.Context(), s.bus, orders.GetCartRequest, orders.GetCart{CustomerID: v.who.UserID})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "cart", cartPage{Cart: c})
	return nil
}

// setCartItem changes one line of the cart: "add" adds the quantity to what the
// cart holds, "set" sets it (0 removes the line).
func (s *Site) setCartItem(w http.ResponseWriter, r *http.Request, v *visit) error {
	id := r.PostFormValue("product_id")
	qty, err := strconv.ParseInt(r.PostFormValue("quantity"), 10, 64)
	if err != nil || qty < 0 || qty > orders.MaxQuantity || id == "" || len(id) > 64 {
		return errInvalidForm
	}
	ctx := r.Context()
	if r.PostFormValue("mode") == "add" {
		c, err := bus.Call(ctx, s.bus, orders.GetCartRequest, orders.GetCart{CustomerID: v.who.UserID})
		if err != nil {
			return err
		}
		for _, l := range c.Lines {
			if l.ProductID == id {
				qty = min(qty+l.Quantity, orders.MaxQuantity)
			}
		}
	}
	if qty == 0 {
		_, err = bus.Call(ctx, s.bus, orders.RemoveCartItemRequest, orders.RemoveCartItem{CustomerID: v.who.UserID, ProductID: id})
	} else {
		_, err = bus.Call(ctx, s.bus, orders.SetCartItemRequest, orders.SetCartItem{CustomerID: v.who.UserID, ProductID: id, Quantity: qty})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/cart", http.StatusSeeOther)
	return nil
}

// testCard is one of the payment simulator's test tokens (see the payments
// module's simulated provider and the README).
type testCard struct {
	Token, Label, Outcome string
}

var testCards = []testCard{
	{"tok_visa", "Test Visa", "is charged at once"},
	{"tok_slow", "Slow test card", "is charged after about a second"},
	{"tok_decline", "Declined test card", "is declined"},
	{"tok_insufficient_funds", "Empty test card", "is declined for insufficient funds"},
	{"tok_error", "Failing provider", "meets a provider error (5xx)"},
	{"tok_timeout", "Silent provider", "never gets an answer: the checkout is rejected after the payment timeout"},
}

// checkoutPage shows the cart with the test cards and a fresh idempotency key:
// posting the same form twice (a double click, a reload) places one order.
func (s *Site) checkoutPage(w http.ResponseWriter, r *http.Request, v *visit) error {
	c, err := bus.Call(r.Context(), s.bus, orders.GetCartRequest, orders.GetCart{CustomerID: v.who.UserID})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "cart", cartPage{Cart: c, Checkout: true, Cards: testCards, IdempotencyKey: bus.NewID()})
	return nil
}

// checkout places the order and goes to its page, where it is followed live.
// Prices that changed since the cart was shown bring the checkout back, re-priced.
func (s *Site) checkout(w http.ResponseWriter, r *http.Request, v *visit) error {
	token, key := r.PostFormValue("payment_token"), r.PostFormValue("idempotency_key")
	if token == "" || len(token) > orders.MaxPaymentTokenLen || key == "" || len(key) > 64 {
		return errInvalidForm
	}
	sum := sha256.Sum256([]byte("web-checkout\x00" + token))
	placed, err := bus.Call(r.Context(), s.bus, orders.PlaceOrderRequest, orders.PlaceOrder{
		CustomerID: v.who.UserID, PaymentToken: token, IdempotencyKey: "web:" + key, RequestHash: hex.EncodeToString(sum[:])})
	if errors.Is(err, orders.ErrPriceChanged) || errors.Is(err, orders.ErrCartEmpty) {
		c, cerr := bus.Call(r.Context(), s.bus, orders.GetCartRequest, orders.GetCart{CustomerID: v.who.UserID})
		if cerr != nil {
			return cerr
		}
		s.render(w, r, v, http.StatusConflict, "cart", cartPage{Cart: c, Checkout: true, Cards: testCards,
			IdempotencyKey: bus.NewID(), Error: message.AsError(err).Message})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/orders/"+placed.Order.ID, http.StatusSeeOther)
	return nil
}
