// Package site is the web module's HTTP face: server-rendered pages (html/template)
// for the storefront, rides and the operations console, their embedded assets, the
// browser session, and the server-sent event streams that keep the live parts
// live. Every piece of data comes from another module's contract over the bus.
package site

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/faults"
	"github.com/agora-commerce/agora/internal/modhost"
)

// Deps are what the site needs from its process.
type Deps struct {
	Bus  *bus.Bus
	Keys *auth.Keys // verifies the access tokens held in session cookies
	// Metrics is the process's registry, read for the console's message flow
	// (nil: the console shows none).
	Metrics prometheus.Gatherer
	// Roster is the binary's modules, for the console: where each runs, and the
	// outboxes of those that own data.
	Roster modhost.Roster
	// Process is the process serving the site, named on the console's faults page.
	Process modhost.Process
	// Faults is this process's fault injector, for the console's faults page (nil:
	// fault injection is off in this process — no --demo nor --allow-faults).
	Faults *faults.Injector
	Log    *slog.Logger
}

// Site serves the pages. It is safe for concurrent use.
type Site struct {
	bus       *bus.Bus
	keys      *auth.Keys
	metrics   prometheus.Gatherer
	roster    modhost.Roster
	process   modhost.Process
	faults    *faults.Injector
	log       *slog.Logger
	refresher *refresher
	signIns   *signInLimits
	pages     *pages
	assets    *assetSet
	cityCache *cityCache
	fleetFeed *fleetFeed
	// streamFor caps how long one event stream stays open; the browser
	// reconnects (EventSource does so by itself).
	streamFor time.Duration
	// driverEvery is how often the maps' drivers are looked up for their
	// event streams.
	driverEvery time.Duration
}

// New returns the site, with its templates parsed and its assets hashed.
func New(d Deps) *Site {
	return &Site{
		bus: d.Bus, keys: d.Keys, metrics: d.Metrics, roster: d.Roster, log: d.Log,
		process: d.Process, faults: d.Faults,
		refresher:   newRefresher(d.Bus),
		signIns:     newSignInLimits(),
		pages:       loadPages(),
		assets:      loadAssets(),
		cityCache:   &cityCache{},
		fleetFeed:   &fleetFeed{bus: d.Bus, every: time.Second},
		streamFor:   5 * time.Minute,
		driverEvery: time.Second,
	}
}

// route is one page or action: a method and path pattern of net/http's ServeMux,
// who may use it, and its handler.
type route struct {
	pattern string
	access  access
	handle  handler
}

// table is the site's table of contents.
func (s *Site) table() []route {
	return []route{
		{"GET /{$}", public, s.home},
		{"GET /products/{id}", public, s.product},
		{"GET /signin", public, s.signInPage},
		{"POST /signin", public, s.signIn},
		{"GET /signup", public, s.signUpPage},
		{"POST /signup", public, s.signUp},
		{"POST /signout", public, s.signOut},
		{"GET /cart", customer, s.cart},
		{"POST /cart", customer, s.setCartItem},
		{"GET /checkout", customer, s.checkoutPage},
		{"POST /checkout", customer, s.checkout},
		{"GET /orders", customer, s.orders},
		{"GET /orders/{id}", customer, s.order},
		{"GET /orders/{id}/live", customer, s.orderLive},
		{"POST /orders/{id}/cancel", customer, s.cancelOrder},
		{"GET /notifications", customer, s.notifications},
		{"GET /rides", customer, s.ridesHome},
		{"POST /rides", customer, s.requestRide},
		{"GET /rides/live", customer, s.fleetLive},
		{"GET /rides/{id}", customer, s.ride},
		{"GET /rides/{id}/live", customer, s.rideLive},
		{"POST /rides/{id}/cancel", customer, s.cancelRide},
		{"GET /console", admin, s.console},
		{"GET /console/live", admin, s.consoleLive},
		{"GET /console/sagas", admin, s.sagas},
		{"GET /console/sagas/{id}", admin, s.saga},
		{"GET /console/dead-letters/{module}", admin, s.deadLetters},
		{"POST /console/dead-letters/{module}/{id}/redrive", admin, s.redrive},
		{"GET /console/inventory", admin, s.inventory},
		{"GET /console/inventory/{sku}", admin, s.item},
		{"POST /console/inventory/{sku}/adjust", admin, s.adjust},
		{"GET /console/faults", admin, s.faultsPage},
		{"GET /console/faults/live", admin, s.faultsLiveStream},
		{"POST /console/faults", admin, s.setFaults},
		{"POST /console/faults/clear", admin, s.clearFaults},
		{"POST /console/faults/provider-outage", admin, s.setProviderOutage},
	}
}

// Routes registers the pages and assets on the mux under the API (they are not
// API operations and stay out of the OpenAPI document). State-changing requests
// from another origin are refused before any handler runs.
func (s *Site) Routes(api huma.API) {
	mux := api.(interface{ Mux() *http.ServeMux }).Mux()
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header())
		s.render(w, r, &visit{}, http.StatusForbidden, "error", errorPage{
			Title:   "This form came from another site",
			Message: "For your safety, forms are only accepted from this shop's own pages. Go back, reload the page and try again.",
		})
	}))
	for _, rt := range s.table() {
		mux.Handle(rt.pattern, csrf.Handler(s.page(rt.access, rt.handle)))
	}
	mux.Handle("GET /assets/{name}", http.HandlerFunc(s.asset))
}
