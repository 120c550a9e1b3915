// Package loadgen drives load against a running Agora through its public HTTP API
// only, so it works against any topology: one process, or many behind one or
// several base URLs (requests go to them in turn).
//
// # The load
//
// Warm-up, before the timed window: sign in Config.Customers customers
// (loadgen-NNNN@example.com, signed up on first use and reused by later runs;
// sign-in is rate-limited per address, so a 429 is waited out as its Retry-After
// says), sign in the admin, read the active products, and restock every product
// whose available stock is below the threshold.
//
// Timed window: an open model. A scheduler launches checkouts at Config.Rate per
// second whatever earlier checkouts are doing; a launch that finds
// Config.MaxInFlight checkouts in flight, or no customer free (a customer has one
// cart, so runs one checkout at a time until its order is placed), is counted as
// dropped, not delayed. A checkout puts 1 to Config.MaxItems random products in
// the customer's cart (PUT /v1/cart/items/{id}, removing what else is there),
// posts the order (POST /v1/orders with a fresh Idempotency-Key and a payment
// token drawn from Config.Tokens; on a 409 orders.price_changed it reads the cart
// and posts again with a new key; on no answer or a 503 it resends the same key),
// then awaits the order's terminal status on its event stream
// (GET /v1/orders/{id}/events) or by polling GET /v1/orders/{id}. Anonymous
// catalog traffic runs alongside at Config.BrowseRate: 30% a page of products
// (half of them in a category), 30% a search, 40% a product by id. With an admin,
// a restocker checks every product's stock each Restock.Every and adds
// Restock.Amount units to one below Restock.Below.
//
// When the window ends, checkouts in flight get Config.Drain to finish; those
// still running are counted as interrupted. When the caller's context ends (Ctrl-C)
// everything stops at once and the report is still made.
//
// # The report
//
// Report (and its JSON form, `agora loadgen --json`) holds, with these stable
// field names:
//
//	urls, await, target_rate, browse_rate  what was asked
//	window_seconds     the timed window as it ran (shorter when interrupted)
//	elapsed_seconds    the window plus the drain
//	interrupted        the run was stopped before its end
//	seed               the seed of the random choices (give it to --seed to repeat them)
//	checkouts          launched, dropped, dropped_no_customer, completed (= confirmed
//	                   + rejected + cancelled), confirmed, rejected, cancelled,
//	                   failed (an HTTP failure before a terminal status),
//	                   timed_out (no terminal status within the order timeout),
//	                   interrupted; launched = completed + failed + timed_out + interrupted
//	throughput         launched_per_second, completed_per_second,
//	                   confirmed_per_second: counts over window_seconds
//	browse             launched, dropped
//	by_token           payment token → outcome → count
//	rejection_reasons  the reason of rejected and cancelled orders → count
//	checkout_latency_ms  terminal status → latency from the order's POST to the
//	                   terminal status seen by the client
//	operations         HTTP operation → {requests, errors, latency_ms}; latency of
//	                   the answered requests (an event stream's: to its headers)
//	errors             [{operation, status, count, example}], most frequent first;
//	                   status is the HTTP status ("503") or "transport", "timeout",
//	                   "bad_response"
//	errors_total, price_changed_retries, restocks
//
// A latency (…_ms) is {count, mean, p50, p90, p99, max} in milliseconds;
// percentiles are nearest-rank over every sample (the smallest sample with at
// least p% of the samples at or below it). Operations are login, register,
// refresh, list_products, search_products, get_product, get_cart,
// put_cart_item, delete_cart_item, place_order, get_order, order_events,
// get_inventory and restock. Expected answers — a 429 on sign-in (waited out), a
// 409 on sign-up of an existing customer, a 401 answered by renewing the token,
// a 409 orders.price_changed — are not errors. The warm-up's requests are not in
// the report.
package loadgen
