package tests

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/tests/internal/procs"

	"github.com/agora-commerce/agora/internal/testlog"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser suite drives the web module's pages (modules/web) in headless
// Chromium against the real binary: a shopper's journey, an admin's console and
// the storefront of a split deployment. Each page it visits is checked with
// axe-core (tests/testdata/axe-core) for serious and critical accessibility
// violations. With AGORA_SCREENSHOTS=<dir> (relative to the repository) it also
// writes the screenshots the README shows.

// browserRequired makes a missing Chromium a failure instead of a skip (CI sets it).
const browserRequired = "AGORA_TEST_REQUIRE_BROWSER"

// browser is one headless Chromium with one tab, for one test.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// chromiumPath finds Chromium, or skips the test (fails it under
// AGORA_TEST_REQUIRE_BROWSER).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(browserRequired) != "" {
		t.Fatalf("no Chromium on PATH and %s is set: install it (apt-get install -y chromium)", browserRequired)
	}
	t.Skipf("browser tests: no Chromium on PATH (apt-get install -y chromium; set %s=1 to make this a failure)", browserRequired)
	return ""
}

// newBrowser starts headless Chromium for base (http://127.0.0.1:port), stopped
// when the test ends. Every step of the test runs within within.
func newBrowser(t *testing.T, base string, within time.Duration) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, within)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base}
}

// do runs steps, failing the test with what was being done.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// open navigates to path and waits for sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(sel))
}

// waitFor opens path until sel is on it: for pages that are not live, whose
// content comes from events handled a moment later. The test's deadline bounds it.
func (b *browser) waitFor(path, sel string) {
	b.t.Helper()
	for {
		b.open(path, "main h1")
		if eval[bool](b, fmt.Sprintf("document.querySelector(%q) !== null", sel)) {
			return
		}
		if b.ctx.Err() != nil {
			b.t.Fatalf("%s never showed %s", path, sel)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// until waits for the expression to be true, across the navigation a step may
// have started (an evaluation that meets it is tried again). The test's deadline
// bounds it.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if b.ctx.Err() != nil {
			b.t.Fatalf("%s: never (%v)", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signUp creates an account through the sign-up form and waits for the shop.
func (b *browser) signUp(email, password string) {
	b.t.Helper()
	b.open("/signup", "#email")
	b.checkA11y("sign-up form")
	b.do("sign up", chromedp.SendKeys("#email", email), chromedp.SendKeys("#password", password),
		chromedp.SendKeys("#confirm", password), chromedp.Click(`main button[type="submit"]`),
		chromedp.WaitVisible(`nav button.link`)) // "Sign out": signed in
}

// signIn signs in through the form reached from path, and waits for sel.
func (b *browser) signIn(path, email, password, sel string) {
	b.t.Helper()
	b.open(path, "#email")
	b.checkA11y("sign-in form")
	b.do("sign in", chromedp.SendKeys("#email", email), chromedp.SendKeys("#password", password),
		chromedp.Click(`main button[type="submit"]`), chromedp.WaitVisible(sel))
}

// axeViolation is one accessibility rule a page breaks.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

var axeSource = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "axe-core", "axe.min.js"))
	return string(b), err
})

// checkA11y runs axe-core on the page and fails the test on every serious or
// critical violation (WCAG 2.x A and AA rules, and axe's best practices).
func (b *browser) checkA11y(page string) {
	b.t.Helper()
	src, err := axeSource()
	if err != nil {
		b.t.Fatal(err)
	}
	// Evaluated through DevTools, which the page's CSP does not govern: the
	// page itself never loads axe.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](src)); err != nil {
		b.t.Fatalf("inject axe-core: %v", err)
	}
	vs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("run axe-core on %s: %v", page, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("%s: %s accessibility violation %s (%s) at %v", page, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// screenshot writes the page to $AGORA_SCREENSHOTS/name.png when that is set.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("AGORA_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(procs.RepoRoot(b.t), dir)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// transfer records what the browser fetches while a page loads.
type transfer struct {
	mu       sync.Mutex
	bytes    float64
	requests []string
}

// measure records the network transfer of loading path, as Chromium counts it
// (encoded bytes on the wire, headers included).
func (b *browser) measure(path, sel string) *transfer {
	b.t.Helper()
	tr := &transfer{}
	ctx, stop := context.WithCancel(b.ctx)
	defer stop()
	err := chromedp.Listen(ctx, func(ev any) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			tr.requests = append(tr.requests, e.Request.URL)
		case *network.EventLoadingFinished:
			tr.bytes += e.EncodedDataLength
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.open(path, sel)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](`document.readyState === "complete"`)); err != nil {
		b.t.Fatalf("wait for the page's load: %v", err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return &transfer{bytes: tr.bytes, requests: append([]string(nil), tr.requests...)}
}

// checkOwnOrigin fails the test on any request the page made to another origin.
func (b *browser) checkOwnOrigin(tr *transfer) {
	b.t.Helper()
	own, _ := url.Parse(b.base)
	for _, r := range tr.requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Host != own.Host) {
			b.t.Errorf("the page requested %s, outside its own origin %s", r, own.Host)
		}
	}
}

// sessionCookie returns the browser's session cookie for the site.
func (b *browser) sessionCookie() *network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "agora_session" {
			return c
		}
	}
	return nil
}

// buy adds the first product the search q finds to the cart and checks out with
// the payment token card, leaving the browser on the order's page; it returns
// the status the page first showed.
func (b *browser) buy(q, card string, qty int) string {
	b.t.Helper()
	b.open("/?q="+url.QueryEscape(q), ".grid .card h2 a")
	b.do("open a product", chromedp.Click(".grid .card h2 a"), chromedp.WaitVisible("#quantity"))
	b.checkA11y("product page")
	b.do("add to cart", chromedp.SetValue("#quantity", fmt.Sprint(qty)), chromedp.Click(".buy button"),
		chromedp.WaitVisible(`a[href="/checkout"]`))
	b.checkA11y("cart")
	b.do("go to checkout", chromedp.Click(`a[href="/checkout"]`), chromedp.WaitVisible("#card-"+card))
	b.checkA11y("checkout")
	b.do("place the order", chromedp.Click("#card-"+card), chromedp.Click(".pay button"), chromedp.WaitVisible("#status .state"))
	return eval[string](b, `document.querySelector("#status .state").dataset.status`)
}

// TestStorefrontJourney is a shopper's whole visit in a real browser: the first
// page (its weight, its origin, its keyboard entry point), sign-up, the session
// cookie's flags, a product into the cart, checkout with the simulator's slow
// card, the order confirmed live on its page (through the event stream, no
// reload), cancelled and refunded, and the notifications it caused.
func TestStorefrontJourney(t *testing.T) {
	a := startAgora(t, t.TempDir())
	b := newBrowser(t, a.base, 2*time.Minute)
	tr := b.measure("/", ".grid .card")
	t.Logf("first page of the storefront: %.1f KB over %d requests", tr.bytes/1024, len(tr.requests))
	if tr.bytes > 200*1024 {
		t.Errorf("the first page transferred %.0f bytes, want under 200 KB", tr.bytes)
	}
	b.checkOwnOrigin(tr)
	b.checkA11y("storefront")
	b.screenshot("storefront")
	b.do("tab to the skip link", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](b, `document.activeElement.className`); got != "skip" {
		t.Errorf("the first Tab lands on %q, want the skip link", got)
	}
	checkPhoneLayout(t, b)

	b.signUp("shopper-"+strings.ToLower(bus4()), "a long passphrase for the shop")
	c := b.sessionCookie()
	if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v, want HttpOnly and SameSite=Strict", c)
	}
	watchConfirmation(t, b, "tok_slow")
	b.do("cancel the order", chromedp.Click("#status form button"), chromedp.WaitVisible("#status .refund"))
	if got := eval[string](b, `document.querySelector("#status .state").dataset.status`); got != "cancelled" {
		t.Errorf("after cancelling, the order is %q, want cancelled", got)
	}
	b.checkA11y("refunded order")
	b.waitFor("/notifications", ".feed li") // notifications follow the order's events
	b.checkA11y("notifications")
}

// watchConfirmation checks out with card and follows the order on its page until it is
// confirmed: the page must first show it pending, then change without a reload.
func watchConfirmation(t *testing.T, b *browser, card string) {
	t.Helper()
	if first := b.buy("tee", card, 2); first != "pending" {
		// tok_slow answers after a second: the page, rendered at once, shows
		// the order pending, so the change to confirmed must come live.
		t.Fatalf("the order page first showed %q, want pending", first)
	}
	eval[chromedp.Void](b, `window.agoraSamePage = true`)
	b.checkA11y("pending order")
	b.do("the order is confirmed live", chromedp.WaitVisible(`#status [data-status="confirmed"]`))
	if !eval[bool](b, `window.agoraSamePage === true`) {
		t.Error("the order page reloaded to show the confirmation; want it live, through its event stream")
	}
	b.checkA11y("confirmed order")
	b.screenshot("order")
}

// checkPhoneLayout checks the storefront on a phone-sized screen: nothing wider
// than the screen (no sideways scrolling).
func checkPhoneLayout(t *testing.T, b *browser) {
	t.Helper()
	b.do("phone-sized screen", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(".grid .card"))
	if w := eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a 390 px wide screen the page is %d px too wide", w)
	}
	b.screenshot("storefront-phone")
	b.do("desktop screen", chromedp.EmulateViewport(1280, 900), chromedp.Reload(), chromedp.WaitVisible(".grid .card"))
}

// bus4 is a short unique suffix for test accounts.
func bus4() string { return fmt.Sprintf("%x@example.com", time.Now().UnixNano()) }

// TestConsoleJourney is an operator's visit: the console is refused to a
// customer (403 page) and sends an anonymous visitor to sign in; the admin sees
// every module running, the panel updating live as messages flow, a checkout's
// saga step by step, and adjusts an item's stock.
func TestConsoleJourney(t *testing.T) {
	a := startAgora(t, t.TempDir())
	b := newBrowser(t, a.base, 2*time.Minute)
	b.signIn("/signin", "customer@example.com", "demo-customer-password", `nav button.link`)
	if first := b.buy("coffee", "tok_visa", 1); first == "" {
		t.Fatal("no order page")
	}
	b.open("/console", "main h1")
	if got := eval[string](b, `document.querySelector("main h1").textContent`); got != "Not allowed" {
		t.Errorf("a customer on /console sees %q, want the 403 page", got)
	}
	b.checkA11y("403 page")
	// The nav's sign-in link, not the 403 page's "sign in as someone else": that one
	// is there before the sign-out has navigated, and opening a page then races it.
	b.do("sign out", chromedp.Click(`nav button.link`), chromedp.WaitVisible(`nav a[href="/signin"]`))

	b.signIn("/console", "admin@example.com", "demo-admin-password", "#live table")
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); !strings.HasSuffix(loc, "/console") {
		t.Errorf("after signing in from /console the admin is at %s, want back at /console", loc)
	}
	// Every module of the registry (one row each, fleet and rides too) is up.
	rows := eval[int](b, `document.querySelectorAll("#live .topology tbody tr").length`)
	if up := eval[int](b, `document.querySelectorAll("#live .badge.confirmed").length`); up != rows || rows < 9 {
		t.Errorf("the topology shows %d of %d modules up, want all of at least 9", up, rows)
	}
	b.checkA11y("console")
	watchConsole(t, b, a)
	b.screenshot("console")

	b.do("open the sagas", chromedp.Click(`.subnav a[href="/console/sagas"]`), chromedp.WaitVisible("main table a"),
		chromedp.Click("main table a"), chromedp.WaitVisible(".history li"))
	if h := eval[string](b, `document.querySelector(".history").innerText`); !strings.Contains(h, "inventory.StockReserved") {
		t.Errorf("the saga's history does not show the reservation:\n%s", h)
	}
	b.checkA11y("saga")
	b.screenshot("saga")

	b.open("/console/inventory", "main table a")
	b.do("adjust stock", chromedp.Click("main table a"), chromedp.WaitVisible("#delta"),
		chromedp.SendKeys("#delta", "7"), chromedp.SendKeys("#reason", "delivery from the browser test"),
		chromedp.Click("main form button"))
	// The page the form posts back to lists it; the form's own page never does.
	listed := `document.querySelector("main table") && document.querySelector("main table").innerText.includes("delivery from the browser test")`
	b.until("the adjustment is listed", listed)
	b.checkA11y("inventory item")
	breakAndRecover(t, b, a)
}

// breakAndRecover opens the console's faults page (the binary runs with --demo,
// which allows faults), applies a preset, sees the schedule and the counters
// move while events flow, and clears it.
func breakAndRecover(t *testing.T, b *browser, a *agora) {
	t.Helper()
	b.do("open the faults page", chromedp.Click(`.subnav a[href="/console/faults"]`), chromedp.WaitVisible("#faults-live"))
	b.checkA11y("faults")
	b.do("apply a preset", chromedp.Click(`button[aria-describedby="preset-duplicate-half"]`),
		chromedp.WaitVisible(`#faults-live .schedule`))
	if got := eval[string](b, `document.querySelector("#faults-live .schedule tbody").innerText`); !strings.Contains(got, "duplicate") {
		t.Errorf("the schedule shown after the preset is %q, want a duplicate rule", got)
	}
	// Each adjustment's StockChanged event is delivered to catalog; half of them twice.
	for range 20 {
		a.do("POST", "/v1/inventory/BOOK-DDIA/adjustments", map[string]any{"delta": 1, "reason": "faults test"}, a.admin()...).want(t, 200, nil)
	}
	b.until("the duplicates are counted", `Number(document.querySelector('#faults-live td[data-kind="duplicate"]').textContent) > 0`)
	b.checkA11y("faults, with a schedule")
	b.screenshot("console-faults")
	b.do("phone-sized screen", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible("#faults-live .schedule"))
	if w := eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a 390 px wide screen the faults page is %d px too wide", w)
	}
	b.screenshot("console-faults-phone")
	b.do("clear the faults", chromedp.Click("#clear-faults"), chromedp.WaitVisible("#faults-live .none"))
	outageOpensTheBreaker(t, b, a)
}

// outageOpensTheBreaker starts the payment provider's outage from the faults
// page, checks out until the breaker opens (each checkout's authorization fails,
// retried; the breaker opens after 20 failed calls in a row), sees the panel
// show it, and ends the outage. (The breaker closing again, after its open
// period, is payments' own test's: TestProviderOutageEnds.)
func outageOpensTheBreaker(t *testing.T, b *browser, a *agora) {
	t.Helper()
	b.do("start the provider's outage", chromedp.Click("#start-outage"), chromedp.WaitVisible("#provider-outage strong"))
	s := newShop(t, func() string { return a.base })
	products, _ := stockUp(t, a, s, 1, 100)
	tok, err := a.login("customer@example.com", "demo-customer-password")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Breaker string `json:"breaker"`
		Outage  bool   `json:"outage"`
	}
	for i := 0; i < 20 && st.Breaker != "open"; i++ {
		if err := s.setCart(t.Context(), tok, products[0].ID, 1); err != nil {
			t.Fatal(err)
		}
		o, err := s.checkout(t.Context(), tok, fmt.Sprint("outage-", i), "tok_visa")
		if err != nil {
			t.Fatal(err)
		}
		testlog.Eventually(t, "the checkout to end", func() bool {
			o, err = s.order(t.Context(), tok, o.ID)
			return err == nil && terminal(o.Status)
		})
		if o.Status != "rejected" {
			t.Fatalf("checkout %d during the outage ended %q, want rejected", i, o.Status)
		}
		a.do("GET", "/v1/ops/payment-provider", nil, a.admin()...).want(t, 200, &st)
	}
	if st.Breaker != "open" || !st.Outage {
		t.Fatalf("after the outage's checkouts the provider is %+v, want the breaker open", st)
	}
	b.until("the panel shows the breaker open", `document.querySelector("#provider-breaker").textContent === "open"`)
	b.checkA11y("faults, provider down")
	b.screenshot("console-faults-outage")
	b.do("end the provider's outage", chromedp.Click("#end-outage"), chromedp.WaitNotPresent("#provider-outage strong"))
	b.until("the panel shows no outage", `document.querySelector("#provider-outage").textContent === "no outage"`)
}

// watchConsole checks that the console's panel is live: a stock adjustment made
// through the API (its StockChanged event flows through the bus) shows in the
// message flow without a reload.
func watchConsole(t *testing.T, b *browser, a *agora) {
	t.Helper()
	eval[chromedp.Void](b, `window.agoraSamePage = true`)
	before := eval[string](b, `document.querySelector("#live .flow").innerText`)
	a.do("POST", "/v1/inventory/BOOK-DDIA/adjustments", map[string]any{"delta": 1, "reason": "console test"}, a.admin()...).want(t, 200, nil)
	js := fmt.Sprintf(`document.querySelector("#live .flow").innerText !== %q`, before)
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js)); err != nil {
		t.Fatalf("the console's message flow never changed after a stock adjustment: %v", err)
	}
	if !eval[bool](b, `window.agoraSamePage === true`) {
		t.Error("the console reloaded; want its panel updated through its event stream")
	}
}

// TestStorefrontSplit runs the storefront from a process of its own
// (AGORA_MODULES=web) in a split deployment, every other module in its own
// process behind NATS: a purchase goes through, and the console shows where
// each module runs.
func TestStorefrontSplit(t *testing.T) {
	d := startSplit(t, append(splitLayout[:len(splitLayout):len(splitLayout)], "web"), false)
	b := newBrowser(t, d.entry.base, 2*time.Minute)
	b.signUp("split-"+strings.ToLower(bus4()), "a long passphrase for the shop")
	b.buy("tee", "tok_visa", 1)
	b.do("the order is confirmed", chromedp.WaitVisible(`#status [data-status="confirmed"]`))
	b.do("sign out", chromedp.Click(`nav button.link`), chromedp.WaitVisible(`nav a[href="/signin"]`))
	b.signIn("/console", "admin@example.com", "demo-admin-password", "#live table")
	procs := eval[int](b, `new Set([...document.querySelectorAll("#live .topology tbody td:nth-child(2)")].map(td => td.innerText.split(" ")[1])).size`)
	if procs != len(splitLayout)+1 {
		t.Errorf("the topology shows %d processes, want %d", procs, len(splitLayout)+1)
	}
}

// TestRideJourney is a rider's visit in a real browser, on the demo's city and
// fleet: the map with the drivers moving live (and on a phone-sized screen), a
// pickup chosen by clicking the map where a driver is and a drop-off from the
// list of places (the way without a pointer), the quote, the request with a
// test card, then the ride's page following it live — a driver assigned and
// shown on the map, the trip completed and its receipt — without a reload.
func TestRideJourney(t *testing.T) {
	a := startAgora(t, t.TempDir())
	b := newBrowser(t, a.base, 4*time.Minute)
	b.signIn("/rides", "customer@example.com", "demo-customer-password", "svg.city .dot.available")
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); !strings.HasSuffix(loc, "/rides") {
		t.Errorf("after signing in from /rides the rider is at %s, want back at /rides", loc)
	}
	b.checkA11y("rides")
	checkRidesPhoneLayout(t, b)

	// The pickup: a click on the available driver's dot nearest the middle of the map
	// (so a driver is near, and the click is well inside the area served: a dot on
	// the city's edge may map to a point just outside it).
	at := `(() => {
		const m = document.querySelector("svg.city").getBoundingClientRect(), cx = m.left + m.width / 2, cy = m.top + m.height / 2;
		const centre = r => [r.left + r.width / 2, r.top + r.height / 2];
		const dots = [...document.querySelectorAll("svg.city .dot.available")].map(d => centre(d.getBoundingClientRect()));
		return dots.reduce((a, b) => Math.hypot(b[0] - cx, b[1] - cy) < Math.hypot(a[0] - cx, a[1] - cy) ? b : a);
	})()`
	xy := eval[[]float64](b, at)
	b.do("click the map for the pickup", chromedp.MouseClickXY(xy[0], xy[1]), chromedp.WaitVisible("svg.city .mark"))
	if v := eval[string](b, `document.querySelector("#pickup").value`); v == "" {
		t.Fatal("a click on the map chose no pickup")
	}
	last := eval[string](b, `[...document.querySelectorAll("#dropoff option")].at(-1).value`)
	b.do("choose the drop-off from the list and ask for the fare", chromedp.SetValue("#dropoff", last),
		chromedp.Click("#ride-form button"), chromedp.WaitVisible("#quote, #ride-error"))
	if msg := eval[string](b, `document.querySelector("#ride-error")?.innerText ?? ""`); msg != "" {
		t.Fatalf("the quote was refused: %s", msg)
	}
	b.checkA11y("quote")
	b.screenshot("rides")

	b.do("request the ride", chromedp.Click("#card-tok_visa"), chromedp.Click(".pay button"), chromedp.WaitVisible("#status .state"))
	eval[chromedp.Void](b, `window.agoraSamePage = true`)
	status := `document.querySelector("#status .state").dataset.status`
	b.until("a driver is assigned (or the ride ends)", status+` !== "requested"`)
	if got := eval[string](b, status); got == "cancelled" {
		t.Fatalf("the ride was cancelled: %s", eval[string](b, `document.querySelector("#status").innerText`))
	}
	b.until("the driver shows on the map", `document.querySelector('[data-event="driver"] .dot') !== null || `+status+` === "completed"`)
	b.checkA11y("ride with its driver")
	b.screenshot("ride")
	b.until("the ride ends", `["completed", "cancelled"].includes(`+status+`)`)
	receipt := eval[string](b, `document.querySelector("#status").innerText`)
	if got := eval[string](b, status); got != "completed" || !strings.Contains(receipt, "Receipt") || !strings.Contains(receipt, "Charged") {
		t.Fatalf("the ride ended %s, want completed with its receipt:\n%s", got, receipt)
	}
	if !eval[bool](b, `window.agoraSamePage === true`) {
		t.Error("the ride page reloaded to follow the ride; want it live, through its event stream")
	}
	b.checkA11y("receipt")
	id := eval[string](b, `location.pathname.split("/").pop()`)
	b.open("/rides", "svg.city")
	if !eval[bool](b, fmt.Sprintf(`document.querySelector('main table a[href="/rides/%s"]') !== null`, id)) {
		t.Errorf("the completed ride %s is not among the rider's rides", id)
	}
}

// checkRidesPhoneLayout checks /rides on a phone-sized screen: nothing wider
// than the screen, the map as wide as it can be.
func checkRidesPhoneLayout(t *testing.T, b *browser) {
	t.Helper()
	b.do("phone-sized screen", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible("svg.city"))
	if w := eval[int](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		t.Errorf("on a 390 px wide screen /rides is %d px too wide", w)
	}
	if w := eval[float64](b, `document.querySelector("svg.city").getBoundingClientRect().width`); w < 300 {
		t.Errorf("on a 390 px wide screen the map is %.0f px wide, want most of the screen", w)
	}
	b.screenshot("rides-phone")
	b.do("desktop screen", chromedp.EmulateViewport(1280, 900), chromedp.Reload(), chromedp.WaitVisible("svg.city"))
}
