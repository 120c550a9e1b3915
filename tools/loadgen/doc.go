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
// and posts again with a new key), then awaits the order's terminal status. A
// request safe to repeat — a read, a cart change, the order's POST with its
// Idempotency-Key — that gets no answer (a process killed or restarting) or a
// 502/503/504 (a module or the broker away) is sent again, the POST with the same
// key, for up to Config.RetryFor (`--retry-for`, 30 s), so a restart costs a
// checkout time, not its success; resends are counted. The order's terminal
// status is awaited on its event stream (GET /v1/orders/{id}/events) or by polling GET /v1/orders/{id}. Anonymous
// catalog traffic runs alongside at Config.BrowseRate: 30% a page of products
// (half of them in a category), 30% a search, 40% a product by id. With an admin,
// a restocker checks every product's stock each Restock.Every and adds
// Restock.Amount units to one below Restock.Below.
//
// When the window ends, checkouts in flight get Config.Drain to finish; those
// still running are counted as interrupted. When the caller's context ends (Ctrl-C)
// everything stops at once and the report is still made.
//
// # The rides scenario
//
// With Config.Scenario "rides" (`--scenario rides`; the default is "shop", the load
// above) a run has two phases, after a warm-up that signs in the admin (a fleet
// operator), the riders (the customers above) and the ride drivers
// (loadgen-driver-NNNN@example.com, signed up on first use, made drivers by the
// admin with PUT /v1/users/{id}/role and If-Match, and reused by later runs), and
// reads the city's streets (GET /v1/fleet/city).
//
// Ingest: RidesConfig.Drivers fleet-operated drivers — ids derived from their
// number, the same in every run, with no accounts — are brought online by the admin
// (POST /v1/fleet/drivers/{id}/online) on random streets, each driving up and down
// its street at 5 to 15 m/s. For RidesConfig.Ingest, batches of RidesConfig.Batch
// positions (the next drivers in turn, each where it is now) are posted as the
// admin to POST /v1/fleet/positions at RidesConfig.PositionRate positions a second
// — an open model again: a batch that finds RidesConfig.Concurrency batches in
// flight is dropped, and after a 429 no batch is sent until its Retry-After has
// passed (those are counted as dropped_backoff). /metrics is read before and after
// the window, and every second for the resident memory; then the drivers go
// offline.
//
// Dispatch: the ride drivers go online (POST /v1/drivers/me/online) at random
// places on the streets and open their streams (GET /v1/drivers/me/stream, a
// WebSocket), send their position every second, accept every offer, and drive the
// trip — to the pickup ("arrive", "start") and on to the drop-off ("complete") — at
// RidesConfig.TripSpeed meters a second, sending a refused trip action again.
// Riders request rides at RidesConfig.RideRate a second for RidesConfig.Dispatch: a
// launch that finds no rider free is dropped. A ride is a quote (POST
// /v1/rides/quotes), the request (POST /v1/rides with a fresh Idempotency-Key,
// payment token tok_visa, resent with the same key on no answer or a 503), and the
// ride's event stream (GET /v1/rides/{id}/events) read to the final status. The
// pickup is a random point on a street, the drop-off 0.5 to 3 km along the same
// street either way. A rider answered 409 rides.rider_busy (a ride of an earlier
// run still going) sits the rest of the run out. Rides in flight at the end get
// Config.Drain to finish.
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
//	resends            requests sent again after no answer or a 502/503/504 (each
//	                   failed attempt is in operations and errors too)
//	server             what the servers did over the shop scenario's window, per
//	                   completed checkout (absent when /metrics could not be read, or
//	                   the run was interrupted): /metrics of every base URL (each
//	                   process of a split) is read just before the first launch —
//	                   after the warm-up's sign-ins — and 2 s after the drain, and the
//	                   growth summed over the processes: processes, seconds (between
//	                   the two readings), checkouts (the completed ones, the divisor),
//	                   cpu_seconds and cpu_ms_per_checkout (process_cpu_seconds_total),
//	                   db_commits and db_commits_per_checkout (agora_db_commits_total:
//	                   on SQLite a group commit counts once), db_transactions and
//	                   db_transactions_per_checkout (agora_db_transactions_committed_total),
//	                   db_commits_by_module (module → commits); with --database-url,
//	                   postgres_commits and postgres_commits_per_checkout
//	                   (pg_stat_database.xact_commit of that database: every
//	                   transaction PostgreSQL ran, a statement outside one included,
//	                   whoever ran it); messages ("kind type" → sent, handled,
//	                   sent_per_checkout, handled_per_checkout, from
//	                   agora_bus_messages_sent_total and _handled_total; types that did
//	                   not move are left out), messages_sent_per_checkout and
//	                   bus_hops_per_checkout (messages handled: deliveries to a handler).
//	                   The servers' background work (pollers, sweeps) over those
//	                   seconds is in every figure.
//	scenario           "shop" or "rides"
//	rides              the rides scenario's (absent in the shop scenario; the
//	                   checkout, browse and token fields are then zero):
//	  ingest           drivers, target_rate, window_seconds, online_failed, batches,
//	                   sent (= accepted + conflated + stale + ignored + refused +
//	                   failed), accepted, conflated, stale, ignored (fleet's answers),
//	                   refused and refused_batches (429), failed (another failure),
//	                   dropped (no batch slot free) and dropped_backoff (waiting out a
//	                   Retry-After), neither of them sent; sent_per_second,
//	                   accepted_per_second over window_seconds
//	  ingest.server    fleet's /metrics over the window (absent when /metrics could
//	                   not be read): received, accepted, conflated, stale, ignored,
//	                   dropped (agora_fleet_position_updates_total by outcome);
//	                   visible_count, visible_p50_ms, visible_p99_ms (from the buckets
//	                   of agora_fleet_position_visible_seconds: the upper bound of the
//	                   bucket holding the quantile; absent beyond the last finite
//	                   bucket); rss_bytes at the end, rss_max_bytes the largest sample
//	                   (process_resident_memory_bytes)
//	  dispatch         target_rate, window_seconds, drivers (online with a stream),
//	                   riders, launched (= completed + cancelled + failed + timed_out
//	                   + interrupted), dropped (no rider free), completed,
//	                   cancelled, cancel_reasons (reason → count), failed,
//	                   timed_out (no final status within the ride timeout),
//	                   interrupted, launched_per_second, completed_per_second,
//	                   offers_received, offers_accepted (by the generator's drivers),
//	                   request_to_assigned_ms (from sending the request to the first
//	                   state with a driver seen on the stream), assigned_server_ms
//	                   (the ride's assigned_at − created_at), request_to_completed_ms
//
// A latency (…_ms) is {count, mean, p50, p90, p99, max} in milliseconds;
// percentiles are nearest-rank over every sample (the smallest sample with at
// least p% of the samples at or below it). Operations are login, register,
// refresh, list_products, search_products, get_product, get_cart,
// put_cart_item, delete_cart_item, place_order, get_order, order_events,
// get_inventory and restock; in the rides scenario fleet_city,
// fleet_driver_online, fleet_driver_offline, report_positions, get_me, get_user,
// set_user_role, driver_online, driver_offline, driver_stream (a stream's
// upgrade; failures of a stream message are recorded as driver_<type>, refused
// trip actions as driver_trip_<action> with the problem's code), quote_ride,
// request_ride and ride_events. Expected answers — a 429 on sign-in (waited out), a
// 409 on sign-up of an existing customer, a 401 answered by renewing the token,
// a 409 orders.price_changed; in the rides scenario a 429 on report_positions
// (counted as refused), a 404 on fleet_driver_offline, a 409 on driver_offline —
// are not errors. The warm-up's requests are not in
// the report.
package loadgen
