// Package chaos is the chaos harness: the split topology (one process per module,
// NATS between them, the payment provider in a process of its own) on SQLite and
// on PostgreSQL, under checkouts from the load generator (tools/loadgen) with its
// card mix and an admin cancelling some orders, while processes are SIGKILLed and
// restarted (one, two at once, orders among them), the broker is stopped and
// started again on its port and store, and PostgreSQL restarts. Then it drains
// and checks the stores directly, with Check (checker.go): it reads each module's
// tables, never the API, so it believes what was stored, not what the modules say.
//
// It measures, per kill, how long after the restarted process was ready every
// checkout pending then was final — those in flight at the kill, and those placed
// while the process was down, waiting on it — and bounds the largest: the issue's
// "final within 3 s of ready", measured from ready so that the time a process
// takes to start is not in it.
//
// Parameters (environment): AGORA_CHAOS_CHECKOUTS (500), AGORA_CHAOS_RATE
// (checkouts a second, 12), AGORA_CHAOS_KILLS (kill events, 5),
// AGORA_CHAOS_OUTAGE (the broker's outage, 3s), AGORA_CHAOS_STORES
// (sqlite,postgres), AGORA_CHAOS_SEED (1), AGORA_CHAOS_RECOVERY_BOUND (3s),
// AGORA_CHAOS_CUSTOMERS (60), AGORA_CHAOS_REPORT (a file to write the run's
// figures to, as JSON). See docs/reliability.md for the long run.
package chaos
