package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver
)

// Stores reads each module's tables directly — its SQLite file under the data
// directory, or its schema (named after the module) in the PostgreSQL database —
// with no help from the modules themselves: the checker believes the stores, not
// the API.
type Stores struct {
	dbs map[string]*sqlx.DB // by module
	pg  bool
}

// checkedModules are the modules whose stores the checker reads.
var checkedModules = []string{"identity", "catalog", "inventory", "payments", "orders", "notifications"}

// OpenStores opens the stores of a deployment: under dataDir (SQLite) when
// databaseURL is empty, else in that PostgreSQL database. SQLite files are opened
// read-only unless writable (the tests that corrupt a store on purpose).
func OpenStores(dataDir, databaseURL string, writable bool) (*Stores, error) {
	s := &Stores{dbs: map[string]*sqlx.DB{}, pg: databaseURL != ""}
	if s.pg {
		db, err := sqlx.Open("pgx", databaseURL)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(4)
		for _, m := range checkedModules {
			s.dbs[m] = db
		}
		return s, nil
	}
	for _, m := range checkedModules {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		if !writable {
			q.Add("mode", "ro")
		}
		db, err := sqlx.Open("sqlite", "file:"+filepath.Join(dataDir, m+".db")+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(2)
		s.dbs[m] = db
	}
	return s, nil
}

// Close closes the connections.
func (s *Stores) Close() {
	for _, db := range s.dbs {
		_ = db.Close()
	}
}

// q is a query on module's store: its tables written {table}, put in the module's
// schema on PostgreSQL; ? placeholders rebound to the dialect.
func (s *Stores) q(module, query string) (*sqlx.DB, string) {
	db := s.dbs[module]
	for _, t := range []string{"orders", "sagas", "payments", "payment_entries", "payment_operations", "items", "adjustments",
		"reservations", "reservation_lines", "notifications", "outbox"} {
		name := t
		if s.pg {
			name = module + "." + t
		}
		query = strings.ReplaceAll(query, "{"+t+"}", name)
	}
	return db, db.Rebind(query)
}

func (s *Stores) selectRows(ctx context.Context, module string, dest any, query string, args ...any) error {
	db, q := s.q(module, query)
	if err := db.SelectContext(ctx, dest, q, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", module, q, err)
	}
	return nil
}

// Exec runs a statement on module's store (the tests' deliberate corruptions).
func (s *Stores) Exec(ctx context.Context, module, query string, args ...any) error {
	db, q := s.q(module, query)
	_, err := db.ExecContext(ctx, q, args...)
	return err
}

// Invariants are what the checker checks, in the order it reports them.
var Invariants = []string{
	"order_not_final",           // an order pending, or its saga not ended
	"confirmed_not_captured",    // a confirmed order not captured exactly once for its total, or refunded
	"charged_not_confirmed",     // a rejected or cancelled order with money kept or still held
	"refund_mismatch",           // a refund without a cancellation, or a cancellation's capture not refunded
	"stock_held",                // a reservation still held, or one that does not match its order's outcome
	"stock_not_conserved",       // a SKU whose on hand is not its adjustments less what was sold
	"notification_mismatch",     // a final order without exactly one notification of its outcome (and of its refund)
	"outbox_not_empty",          // a message still waiting in a module's outbox
	"dead_letter",               // a message parked as a dead letter (outbox or AGORA_DEAD)
	"payment_operation_pending", // a provider call still to make
}

// Result is what the checker found: for each invariant, its violations.
type Result struct {
	Orders     map[string]int // by status
	Violations map[string][]string
}

func (r *Result) bad(invariant, format string, args ...any) {
	r.Violations[invariant] = append(r.Violations[invariant], fmt.Sprintf(format, args...))
}

// Count is the number of violations of invariant.
func (r *Result) Count(invariant string) int { return len(r.Violations[invariant]) }

// Total is the number of violations of every invariant.
func (r *Result) Total() int {
	n := 0
	for _, v := range r.Violations {
		n += len(v)
	}
	return n
}

// String lists the counts, and up to five examples of each violated invariant.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "orders %v\n", r.Orders)
	for _, inv := range Invariants {
		v := r.Violations[inv]
		fmt.Fprintf(&b, "  %-26s %d\n", inv, len(v))
		for _, e := range v[:min(5, len(v))] {
			fmt.Fprintf(&b, "      %s\n", e)
		}
	}
	return b.String()
}

// world is what the stores hold, read once.
type world struct {
	orders        map[string]*orderRow
	payments      map[string]*paymentRow
	entries       map[string]map[string][]int64 // order → kind → amounts
	reservations  map[string]string             // order → status
	resLines      map[string]map[string]int64   // order → SKU → quantity
	notes         map[string]map[string]int     // order → kind → count
	items         []itemRow
	adjusted      map[string]int64 // SKU → sum of the adjustments' deltas
	pendingOps    int
	outboxLive    map[string]int
	outboxDead    []string
	jetStreamDead []string
}

type orderRow struct {
	ID       string `db:"id"`
	Status   string `db:"status"`
	Total    int64  `db:"total_amount"`
	Refunded int64  `db:"refunded"`
	Lines    string `db:"lines"`
	Saga     string `db:"state"`
}

type paymentRow struct {
	ID         string `db:"payable_id"`
	Status     string `db:"status"`
	Authorized int64  `db:"authorized"`
	Captured   int64  `db:"captured"`
	Refunded   int64  `db:"refunded"`
}

type itemRow struct {
	SKU      string `db:"sku"`
	OnHand   int64  `db:"on_hand"`
	Reserved int64  `db:"reserved"`
}

// Check reads every store and returns what breaks the invariants. jetStreamDead
// lists the messages in the broker's dead-letter stream (read by the caller).
func Check(ctx context.Context, s *Stores, jetStreamDead []string) (*Result, error) {
	w, err := read(ctx, s)
	if err != nil {
		return nil, err
	}
	w.jetStreamDead = jetStreamDead
	r := &Result{Orders: map[string]int{}, Violations: map[string][]string{}}
	for _, id := range sortedKeys(w.orders) {
		o := w.orders[id]
		r.Orders[o.Status]++
		w.checkOrder(r, o)
	}
	w.checkOrphans(r)
	w.checkStock(r)
	w.checkQueues(r)
	return r, nil
}

func read(ctx context.Context, s *Stores) (*world, error) {
	w := &world{orders: map[string]*orderRow{}, payments: map[string]*paymentRow{}, entries: map[string]map[string][]int64{},
		reservations: map[string]string{}, resLines: map[string]map[string]int64{}, notes: map[string]map[string]int{},
		adjusted: map[string]int64{}, outboxLive: map[string]int{}}
	for _, step := range []func(context.Context, *Stores) error{w.readOrders, w.readPayments, w.readInventory, w.readNotes, w.readOutboxes} {
		if err := step(ctx, s); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *world) readOrders(ctx context.Context, s *Stores) error {
	var rows []*orderRow
	if err := s.selectRows(ctx, "orders", &rows, `SELECT o.id, o.status, o.total_amount, o.refunded, o.lines, COALESCE(s.state, '') AS state
		FROM {orders} o LEFT JOIN {sagas} s ON s.order_id = o.id`); err != nil {
		return err
	}
	for _, o := range rows {
		w.orders[o.ID] = o
	}
	return nil
}

func (w *world) readPayments(ctx context.Context, s *Stores) error {
	var pays []*paymentRow
	if err := s.selectRows(ctx, "payments", &pays, `SELECT payable_id, status, authorized, captured, refunded FROM {payments} WHERE payable = 'order'`); err != nil {
		return err
	}
	for _, p := range pays {
		w.payments[p.ID] = p
	}
	var entries []struct {
		ID     string `db:"payable_id"`
		Kind   string `db:"kind"`
		Amount int64  `db:"amount"`
	}
	if err := s.selectRows(ctx, "payments", &entries, `SELECT e.payable_id, e.kind, e.amount FROM {payment_entries} e
		JOIN {payments} p ON p.payable_id = e.payable_id WHERE p.payable = 'order'`); err != nil {
		return err
	}
	for _, e := range entries {
		if w.entries[e.ID] == nil {
			w.entries[e.ID] = map[string][]int64{}
		}
		w.entries[e.ID][e.Kind] = append(w.entries[e.ID][e.Kind], e.Amount)
	}
	var pending []int
	if err := s.selectRows(ctx, "payments", &pending, `SELECT COUNT(*) FROM {payment_operations} WHERE state = 'pending'`); err != nil {
		return err
	}
	w.pendingOps = pending[0]
	return nil
}

func (w *world) readInventory(ctx context.Context, s *Stores) error {
	if err := s.selectRows(ctx, "inventory", &w.items, `SELECT sku, on_hand, reserved FROM {items} ORDER BY sku`); err != nil {
		return err
	}
	var adj []struct {
		SKU   string `db:"sku"`
		Delta int64  `db:"delta"`
	}
	if err := s.selectRows(ctx, "inventory", &adj, `SELECT sku, SUM(delta) AS delta FROM {adjustments} GROUP BY sku`); err != nil {
		return err
	}
	for _, a := range adj {
		w.adjusted[a.SKU] = a.Delta
	}
	var res []struct {
		ID     string `db:"order_id"`
		Status string `db:"status"`
	}
	if err := s.selectRows(ctx, "inventory", &res, `SELECT order_id, status FROM {reservations}`); err != nil {
		return err
	}
	for _, r := range res {
		w.reservations[r.ID] = r.Status
	}
	var lines []struct {
		ID  string `db:"order_id"`
		SKU string `db:"sku"`
		Qty int64  `db:"quantity"`
	}
	if err := s.selectRows(ctx, "inventory", &lines, `SELECT order_id, sku, quantity FROM {reservation_lines}`); err != nil {
		return err
	}
	for _, l := range lines {
		if w.resLines[l.ID] == nil {
			w.resLines[l.ID] = map[string]int64{}
		}
		w.resLines[l.ID][l.SKU] += l.Qty
	}
	return nil
}

func (w *world) readNotes(ctx context.Context, s *Stores) error {
	var notes []struct {
		ID   string `db:"order_id"`
		Kind string `db:"kind"`
	}
	if err := s.selectRows(ctx, "notifications", &notes, `SELECT order_id, kind FROM {notifications} WHERE order_id <> ''`); err != nil {
		return err
	}
	for _, n := range notes {
		if w.notes[n.ID] == nil {
			w.notes[n.ID] = map[string]int{}
		}
		w.notes[n.ID][n.Kind]++
	}
	return nil
}

func (w *world) readOutboxes(ctx context.Context, s *Stores) error {
	for _, m := range checkedModules {
		var rows []struct {
			ID    string  `db:"id"`
			Type  string  `db:"type"`
			Error string  `db:"last_error"`
			Dead  *string `db:"dead"`
		}
		if err := s.selectRows(ctx, m, &rows, `SELECT id, type, last_error, CAST(dead_at AS TEXT) AS dead FROM {outbox}`); err != nil {
			return err
		}
		for _, r := range rows {
			if r.Dead == nil {
				w.outboxLive[m]++
			} else {
				w.outboxDead = append(w.outboxDead, fmt.Sprintf("%s outbox: %s %s: %s", m, r.Type, r.ID, r.Error))
			}
		}
	}
	return nil
}

// checkOrder checks one order against its saga, payment, reservation and notifications.
func (w *world) checkOrder(r *Result, o *orderRow) {
	p := w.payments[o.ID]
	if p == nil {
		p = &paymentRow{}
	}
	captures, refunds := w.entries[o.ID]["captured"], w.entries[o.ID]["refunded"]
	if o.Status == "pending" || !slices.Contains([]string{"completed", "rejected", "cancelled"}, o.Saga) {
		r.bad("order_not_final", "order %s is %s, its saga %q", o.ID, o.Status, o.Saga)
	}
	held := p.Status == "authorizing" || p.Status == "authorized"
	switch o.Status {
	case "confirmed":
		if len(captures) != 1 || captures[0] != o.Total || p.Captured != o.Total || p.Refunded != 0 || len(refunds) != 0 {
			r.bad("confirmed_not_captured", "order %s confirmed for %d: captures %v, payment %+v, refunds %v", o.ID, o.Total, captures, *p, refunds)
		}
	case "rejected", "cancelled":
		if held || p.Captured != p.Refunded || sum(captures) != sum(refunds) {
			r.bad("charged_not_confirmed", "order %s %s: payment %+v, captures %v, refunds %v", o.ID, o.Status, *p, captures, refunds)
		}
	}
	switch {
	case o.Status != "cancelled" && len(refunds) > 0:
		r.bad("refund_mismatch", "order %s %s has refunds %v", o.ID, o.Status, refunds)
	case o.Status == "cancelled" && (sum(refunds) != sum(captures) || o.Refunded != p.Refunded || len(refunds) > 1):
		r.bad("refund_mismatch", "order %s cancelled: captured %v, refunded %v, the order says %d refunded", o.ID, captures, refunds, o.Refunded)
	}
	w.checkReservation(r, o, len(captures) > 0)
	w.checkNotes(r, o, p.Refunded > 0)
}

// checkReservation checks that the order's stock went where its outcome says:
// committed when it sold, put back when a sale was cancelled, never still held.
func (w *world) checkReservation(r *Result, o *orderRow, sold bool) {
	st := w.reservations[o.ID]
	want := map[string][]string{
		"confirmed": {"committed"},
		"rejected":  {"", "released", "rejected"},
		"cancelled": {"", "released", "rejected"},
	}[o.Status]
	if o.Status == "cancelled" && sold {
		want = []string{"restocked"}
	}
	if want != nil && !slices.Contains(want, st) {
		r.bad("stock_held", "order %s %s: reservation %q, want one of %q", o.ID, o.Status, st, want)
		return
	}
	if st != "committed" && st != "restocked" {
		return
	}
	var lines []struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	_ = json.Unmarshal([]byte(o.Lines), &lines)
	ordered := map[string]int64{}
	for _, l := range lines {
		ordered[l.SKU] += l.Quantity
	}
	if fmt.Sprint(ordered) != fmt.Sprint(w.resLines[o.ID]) {
		r.bad("stock_held", "order %s %s: ordered %v, reserved %v", o.ID, o.Status, ordered, w.resLines[o.ID])
	}
}

// checkNotes wants one notification of the order's outcome (and of its
// confirmation, when a confirmed order was cancelled), one of its refund, no other.
func (w *world) checkNotes(r *Result, o *orderRow, refunded bool) {
	if o.Status == "pending" {
		return
	}
	want := map[string]int{"order_" + o.Status: 1}
	if w.reservations[o.ID] == "restocked" {
		want["order_confirmed"] = 1
	}
	if refunded {
		want["refund_issued"] = 1
	}
	got := w.notes[o.ID]
	if fmt.Sprint(want) != fmt.Sprint(got) {
		r.bad("notification_mismatch", "order %s %s: notifications %v, want %v", o.ID, o.Status, got, want)
	}
}

// checkOrphans finds payments, reservations and notifications of orders that do not exist.
func (w *world) checkOrphans(r *Result) {
	for _, id := range sortedKeys(w.payments) {
		if w.orders[id] == nil {
			r.bad("charged_not_confirmed", "payment %+v of an order that does not exist", *w.payments[id])
		}
	}
	for _, id := range sortedKeys(w.reservations) {
		if w.orders[id] == nil {
			r.bad("stock_held", "reservation %s (%s) of an order that does not exist", id, w.reservations[id])
		}
	}
	for _, id := range sortedKeys(w.notes) {
		if w.orders[id] == nil {
			r.bad("notification_mismatch", "notifications %v of an order that does not exist", w.notes[id])
		}
	}
}

// checkStock conserves stock per SKU from the audit trail: what is on hand is
// what the adjustments brought less what committed reservations took (a
// restocked one gave it back), and what is reserved is what held ones hold.
func (w *world) checkStock(r *Result) {
	sold, held := map[string]int64{}, map[string]int64{}
	for id, st := range w.reservations {
		for sku, q := range w.resLines[id] {
			switch st {
			case "committed":
				sold[sku] += q
			case "held":
				held[sku] += q
			}
		}
	}
	for _, it := range w.items {
		if it.OnHand != w.adjusted[it.SKU]-sold[it.SKU] || it.Reserved != held[it.SKU] || it.Reserved != 0 {
			r.bad("stock_not_conserved", "%s: on hand %d, reserved %d; adjusted %+d, sold %d, held %d",
				it.SKU, it.OnHand, it.Reserved, w.adjusted[it.SKU], sold[it.SKU], held[it.SKU])
		}
	}
}

func (w *world) checkQueues(r *Result) {
	for _, m := range sortedKeys(w.outboxLive) {
		r.bad("outbox_not_empty", "%s outbox: %d messages", m, w.outboxLive[m])
	}
	for _, d := range append(w.outboxDead, w.jetStreamDead...) {
		r.bad("dead_letter", "%s", d)
	}
	if w.pendingOps > 0 {
		r.bad("payment_operation_pending", "%d provider calls pending", w.pendingOps)
	}
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
