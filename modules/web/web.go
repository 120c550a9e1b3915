// Package web is the contract of the web module: Agora's face for people, served by
// the binary itself — the storefront at / (browse and search with live
// availability, sign-up and sign-in, cart, checkout, the order followed live,
// history, notifications, cancel and refund), rides at /rides (the simulated
// city drawn from fleet's own streets with its drivers moving live, a quote and
// a ride request, the ride followed live to its receipt) and the operations
// console at /console (admins only: topology, message flow, outboxes and dead
// letters, sagas, the payment provider's breaker, inventory, and — where the
// process allows fault injection — the faults its bus injects).
//
// The module declares no messages and owns no data: it renders HTML on the server
// from what the other modules answer over the bus (their contracts only, never
// their tables), so it works in every topology — in the single binary, in every
// process of a split deployment, or alone as the frontend service
// (AGORA_MODULES=web AGORA_HTTP_MODULES=web).
//
// Browser sessions are an HttpOnly, SameSite=Strict cookie holding identity's
// tokens; state-changing forms are also refused when the browser says they come
// from another origin. Pages carry a strict Content-Security-Policy: scripts and
// styles only from the module's own embedded, content-hashed files.
//
// The console's faults page (/console/faults) shows and changes the fault
// schedule of the process serving it (its *faults.Injector, provided by
// internal/app where --demo or --allow-faults allows it): in a split deployment
// the other processes keep theirs. Its payment-provider panel starts and ends
// the simulated provider's outage through payments (payments.SetProviderOutage),
// which payments' own process allows or refuses.
package web

// Name is the module's name in AGORA_MODULES and AGORA_HTTP_MODULES.
const Name = "web"
