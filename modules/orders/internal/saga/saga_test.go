package saga_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
	"github.com/agora-commerce/agora/modules/payments"
)

var (
	t0     = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	timing = saga.Timing{StepTimeout: 10 * time.Second, MaxAttempts: 3, ReservationTTL: 15 * time.Minute}
)

const orderID = "0190a8b2-0000-7000-8000-0000000000a1"

func newOrder() orders.Order {
	return orders.Order{ID: orderID, CustomerID: "0190a8b2-0000-7000-8000-00000000c001", Status: orders.StatusPending,
		Lines: []orders.OrderLine{
			{ProductID: "p1", SKU: "TEE-M", Name: "Classic Tee", UnitPrice: orders.Money{Amount: 1500, Currency: "EUR"}, Quantity: 3, LineTotal: orders.Money{Amount: 4500, Currency: "EUR"}},
			{ProductID: "p2", SKU: "MUG", Name: "Mug", UnitPrice: orders.Money{Amount: 500, Currency: "EUR"}, Quantity: 1, LineTotal: orders.Money{Amount: 500, Currency: "EUR"}},
		},
		Total: orders.Money{Amount: 5000, Currency: "EUR"}, Version: 1, CreatedAt: t0, UpdatedAt: t0}
}

// The messages the saga takes, by a short name.
var (
	stockReserved  = inventory.StockReserved{OrderID: orderID}
	stockRejected  = inventory.StockReservationRejected{OrderID: orderID, Lines: []inventory.RejectedLine{{ProductID: "p1", SKU: "TEE-M", Requested: 3, Available: 1, Reason: inventory.RejectOutOfStock}}}
	committed      = inventory.ReservationCommitted{OrderID: orderID}
	commitFailed   = inventory.ReservationCommitFailed{OrderID: orderID, Reason: "expired"}
	released       = inventory.ReservationReleased{OrderID: orderID}
	restocked      = inventory.OrderRestocked{OrderID: orderID}
	authorized     = payments.PaymentAuthorized{PayableID: orderID, Amount: payments.Money{Amount: 5000, Currency: "EUR"}}
	declined       = payments.PaymentDeclined{PayableID: orderID, Reason: payments.DeclineInsufficientFunds, Message: "Your card has insufficient funds."}
	captured       = payments.PaymentCaptured{PayableID: orderID}
	voided         = payments.PaymentVoided{PayableID: orderID}
	cancelRefunded = payments.RefundIssued{PayableID: orderID, RefundID: orderID + "-cancel", Amount: payments.Money{Amount: 5000, Currency: "EUR"}, TotalRefunded: 5000}
	cancelRefFail  = payments.RefundFailed{PayableID: orderID, RefundID: orderID + "-cancel", Reason: "nothing left"}
	otherRefunded  = payments.RefundIssued{PayableID: orderID, RefundID: "r-1", Amount: payments.Money{Amount: 1000, Currency: "EUR"}, TotalRefunded: 1000}
	otherRefFail   = payments.RefundFailed{PayableID: orderID, RefundID: "r-1", Reason: "nothing captured"}
	cancel         = saga.Cancel{Reason: "changed my mind", Actor: "c1"}
	refund         = saga.RefundRequest{RefundID: "r-1", Amount: 1000, Reason: "goodwill", Actor: "admin"}
	timeout        = saga.Timeout{}
)

// messages lists every message, by name, in the order the table shows them.
var messages = []struct {
	name string
	msg  any
}{
	{"StockReserved", stockReserved}, {"StockReservationRejected", stockRejected},
	{"PaymentAuthorized", authorized}, {"PaymentDeclined", declined},
	{"ReservationCommitted", committed}, {"PaymentCaptured", captured}, {"ReservationCommitFailed", commitFailed},
	{"ReservationReleased", released}, {"PaymentVoided", voided}, {"OrderRestocked", restocked},
	{"RefundIssued(cancel)", cancelRefunded}, {"RefundFailed(cancel)", cancelRefFail},
	{"RefundIssued(other)", otherRefunded}, {"RefundFailed(other)", otherRefFail},
	{"Cancel", cancel}, {"Refund", refund}, {"Timeout", timeout},
}

type situation struct {
	s saga.Saga
	o orders.Order
}

// reach starts a saga and applies msgs to it, failing on any error.
func reach(t *testing.T, msgs ...any) situation {
	t.Helper()
	o := newOrder()
	s, _ := saga.Start(o, "tok_visa", t0, timing)
	now := t0
	for _, m := range msgs {
		now = now.Add(time.Second)
		r, err := saga.Apply(s, o, m, now, timing)
		if err != nil {
			t.Fatalf("reaching the situation: %T: %v", m, err)
		}
		s, o = r.Saga, r.Order
	}
	return situation{s, o}
}

// exhaust returns the timeouts that use up a pending step's attempts.
func exhaust() []any {
	out := make([]any, timing.MaxAttempts-1)
	for i := range out {
		out[i] = timeout
	}
	return out
}

// want is what one message does to one situation. The zero want is "ignored": no
// change but a history step, nothing sent.
type want struct {
	state    orders.SagaState
	status   orders.Status
	reason   string // substring of the order's reason, when set
	send     []string
	awaiting []saga.Ack
	refunded int64
	err      error
}

func types(out []message.Outgoing) []string {
	var ts []string
	for _, o := range out {
		ts = append(ts, o.Type)
	}
	return ts
}

// Short names of the messages the saga sends.
var (
	cReserve   = inventory.ReserveStockCommand.Name()
	cCommit    = inventory.CommitReservationCommand.Name()
	cRelease   = inventory.ReleaseReservationCommand.Name()
	cRestock   = inventory.RestockOrderCommand.Name()
	cAuthorize = payments.AuthorizePaymentCommand.Name()
	cCapture   = payments.CapturePaymentCommand.Name()
	cVoid      = payments.VoidPaymentCommand.Name()
	cRefund    = payments.RefundPaymentCommand.Name()
	eConfirmed = orders.OrderConfirmedEvent.Name()
	eRejected  = orders.OrderRejectedEvent.Name()
	eCancelled = orders.OrderCancelledEvent.Name()
)

// TestTransitions applies every message to every situation a saga can be in. A
// (situation, message) pair the table does not list must change nothing but the
// history.
func TestTransitions(t *testing.T) {
	situations := []struct {
		name  string
		reach []any
		do    map[string]want
	}{
		{name: "reserving", do: map[string]want{
			"StockReserved":            {state: orders.SagaAuthorizing, send: []string{cAuthorize}},
			"StockReservationRejected": {state: orders.SagaRejected, status: orders.StatusRejected, reason: "Out of stock: Classic Tee (asked 3, 1 left)", send: []string{eRejected}},
			"Cancel":                   {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "changed my mind", send: []string{cRelease, eCancelled}, awaiting: []saga.Ack{saga.AckReleased}},
			"Refund":                   {err: orders.ErrNotRefundable},
			"Timeout":                  {state: orders.SagaReserving, send: []string{cReserve}},
		}},
		{name: "reserving, attempts used up", reach: exhaust(), do: map[string]want{
			"StockReserved":            {state: orders.SagaAuthorizing, send: []string{cAuthorize}},
			"StockReservationRejected": {state: orders.SagaRejected, status: orders.StatusRejected, send: []string{eRejected}},
			"Cancel":                   {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease, eCancelled}, awaiting: []saga.Ack{saga.AckReleased}},
			"Refund":                   {err: orders.ErrNotRefundable},
			"Timeout":                  {state: orders.SagaCompensating, status: orders.StatusRejected, reason: "you have not been charged", send: []string{cRelease, eRejected}, awaiting: []saga.Ack{saga.AckReleased}},
		}},
		{name: "authorizing", reach: []any{stockReserved}, do: map[string]want{
			"PaymentAuthorized": {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit, cCapture, eConfirmed}, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			"PaymentDeclined":   {state: orders.SagaCompensating, status: orders.StatusRejected, reason: "insufficient funds", send: []string{cRelease, eRejected}, awaiting: []saga.Ack{saga.AckReleased}},
			"Cancel":            {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease, cVoid, eCancelled}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
			"Refund":            {err: orders.ErrNotRefundable},
			"Timeout":           {state: orders.SagaAuthorizing, send: []string{cAuthorize}},
		}},
		{name: "authorizing, attempts used up", reach: append([]any{stockReserved}, exhaust()...), do: map[string]want{
			"PaymentAuthorized": {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit, cCapture, eConfirmed}, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			"PaymentDeclined":   {state: orders.SagaCompensating, status: orders.StatusRejected, send: []string{cRelease, eRejected}, awaiting: []saga.Ack{saga.AckReleased}},
			"Cancel":            {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease, cVoid, eCancelled}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
			"Refund":            {err: orders.ErrNotRefundable},
			"Timeout":           {state: orders.SagaCompensating, status: orders.StatusRejected, reason: "in time", send: []string{cRelease, cVoid, eRejected}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
		}},
		{name: "completing", reach: []any{stockReserved, authorized}, do: map[string]want{
			"ReservationCommitted":    {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCaptured}},
			"PaymentCaptured":         {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted}},
			"ReservationCommitFailed": {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "sold out", send: []string{eCancelled}, awaiting: []saga.Ack{saga.AckCaptured}},
			"Cancel":                  {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			"Refund":                  {err: orders.ErrNotRefundable},
			"RefundIssued(other)":     {state: orders.SagaCompleting, status: orders.StatusConfirmed, refunded: 1000, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			// Never compensated by a timeout: the commands go again, however often.
			"Timeout": {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit, cCapture}, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
		}},
		{name: "completing, attempts used up", reach: append([]any{stockReserved, authorized}, exhaust()...), do: map[string]want{
			"ReservationCommitted":    {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCaptured}},
			"PaymentCaptured":         {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted}},
			"ReservationCommitFailed": {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{eCancelled}, awaiting: []saga.Ack{saga.AckCaptured}},
			"Cancel":                  {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			"Refund":                  {err: orders.ErrNotRefundable},
			"RefundIssued(other)":     {state: orders.SagaCompleting, status: orders.StatusConfirmed, refunded: 1000, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
			"Timeout":                 {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit, cCapture}, awaiting: []saga.Ack{saga.AckCommitted, saga.AckCaptured}},
		}},
		{name: "completing, captured", reach: []any{stockReserved, authorized, captured}, do: map[string]want{
			"ReservationCommitted":    {state: orders.SagaCompleted, status: orders.StatusConfirmed},
			"ReservationCommitFailed": {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "sold out", send: []string{cRefund, eCancelled}, awaiting: []saga.Ack{saga.AckRefunded}},
			"Cancel":                  {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted}},
			"Refund":                  {err: orders.ErrNotRefundable},
			"RefundIssued(other)":     {state: orders.SagaCompleting, status: orders.StatusConfirmed, refunded: 1000, awaiting: []saga.Ack{saga.AckCommitted}},
			"Timeout":                 {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit}, awaiting: []saga.Ack{saga.AckCommitted}},
		}},
		{name: "completing, cancel asked", reach: []any{stockReserved, authorized, cancel, captured}, do: map[string]want{
			// Completed, then cancelled at once: refunded and restocked.
			"ReservationCommitted":    {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "changed my mind", send: []string{cRefund, cRestock, eCancelled}, awaiting: []saga.Ack{saga.AckRefunded, saga.AckRestocked}},
			"ReservationCommitFailed": {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "sold out", send: []string{cRefund, eCancelled}, awaiting: []saga.Ack{saga.AckRefunded}},
			"Cancel":                  {state: orders.SagaCompleting, status: orders.StatusConfirmed, awaiting: []saga.Ack{saga.AckCommitted}},
			"Refund":                  {err: orders.ErrNotRefundable},
			"RefundIssued(other)":     {state: orders.SagaCompleting, status: orders.StatusConfirmed, refunded: 1000, awaiting: []saga.Ack{saga.AckCommitted}},
			"Timeout":                 {state: orders.SagaCompleting, status: orders.StatusConfirmed, send: []string{cCommit}, awaiting: []saga.Ack{saga.AckCommitted}},
		}},
		{name: "completed", reach: []any{stockReserved, authorized, committed, captured}, do: map[string]want{
			"Cancel":              {state: orders.SagaCompensating, status: orders.StatusCancelled, reason: "changed my mind", send: []string{cRefund, cRestock, eCancelled}, awaiting: []saga.Ack{saga.AckRefunded, saga.AckRestocked}},
			"Refund":              {state: orders.SagaCompleted, status: orders.StatusConfirmed, send: []string{cRefund}},
			"RefundIssued(other)": {state: orders.SagaCompleted, status: orders.StatusConfirmed, refunded: 1000},
		}},
		{name: "compensating after a decline", reach: []any{stockReserved, declined}, do: map[string]want{
			"StockReserved":       {state: orders.SagaCompensating, status: orders.StatusRejected, send: []string{cRelease}, awaiting: []saga.Ack{saga.AckReleased}},
			"PaymentAuthorized":   {state: orders.SagaCompensating, status: orders.StatusRejected, send: []string{cVoid}, awaiting: []saga.Ack{saga.AckReleased}},
			"ReservationReleased": {state: orders.SagaRejected, status: orders.StatusRejected},
			"Cancel":              {err: orders.ErrNotCancellable},
			"Refund":              {err: orders.ErrNotRefundable},
			"Timeout":             {state: orders.SagaCompensating, status: orders.StatusRejected, send: []string{cRelease}, awaiting: []saga.Ack{saga.AckReleased}},
		}},
		{name: "compensating after a pending cancel", reach: []any{stockReserved, cancel}, do: map[string]want{
			"StockReserved":       {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
			"PaymentAuthorized":   {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cVoid}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
			"ReservationReleased": {state: orders.SagaCompensating, status: orders.StatusCancelled, awaiting: []saga.Ack{saga.AckVoided}},
			"PaymentVoided":       {state: orders.SagaCompensating, status: orders.StatusCancelled, awaiting: []saga.Ack{saga.AckReleased}},
			"Cancel":              {err: orders.ErrNotCancellable},
			"Refund":              {err: orders.ErrNotRefundable},
			"Timeout":             {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease, cVoid}, awaiting: []saga.Ack{saga.AckReleased, saga.AckVoided}},
		}},
		{name: "compensating, one acknowledgement left", reach: []any{stockReserved, cancel, released}, do: map[string]want{
			"StockReserved":     {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRelease}, awaiting: []saga.Ack{saga.AckVoided}},
			"PaymentAuthorized": {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cVoid}, awaiting: []saga.Ack{saga.AckVoided}},
			"PaymentVoided":     {state: orders.SagaCancelled, status: orders.StatusCancelled},
			"Cancel":            {err: orders.ErrNotCancellable},
			"Refund":            {err: orders.ErrNotRefundable},
			"Timeout":           {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cVoid}, awaiting: []saga.Ack{saga.AckVoided}},
		}},
		{name: "compensating a confirmed cancel", reach: []any{stockReserved, authorized, committed, captured, cancel}, do: map[string]want{
			"OrderRestocked":       {state: orders.SagaCompensating, status: orders.StatusCancelled, awaiting: []saga.Ack{saga.AckRefunded}},
			"RefundIssued(cancel)": {state: orders.SagaCompensating, status: orders.StatusCancelled, refunded: 5000, awaiting: []saga.Ack{saga.AckRestocked}},
			"RefundFailed(cancel)": {state: orders.SagaCompensating, status: orders.StatusCancelled, awaiting: []saga.Ack{saga.AckRestocked}},
			"RefundIssued(other)":  {state: orders.SagaCompensating, status: orders.StatusCancelled, refunded: 1000, awaiting: []saga.Ack{saga.AckRefunded, saga.AckRestocked}},
			"Cancel":               {err: orders.ErrNotCancellable},
			"Refund":               {err: orders.ErrNotRefundable},
			"Timeout":              {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRefund, cRestock}, awaiting: []saga.Ack{saga.AckRefunded, saga.AckRestocked}},
		}},
		{name: "compensating a failed commit before capture", reach: []any{stockReserved, authorized, commitFailed}, do: map[string]want{
			"PaymentCaptured":     {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cRefund}, awaiting: []saga.Ack{saga.AckRefunded}},
			"RefundIssued(other)": {state: orders.SagaCompensating, status: orders.StatusCancelled, refunded: 1000, awaiting: []saga.Ack{saga.AckCaptured}},
			"Cancel":              {err: orders.ErrNotCancellable},
			"Refund":              {err: orders.ErrNotRefundable},
			"Timeout":             {state: orders.SagaCompensating, status: orders.StatusCancelled, send: []string{cCapture}, awaiting: []saga.Ack{saga.AckCaptured}},
		}},
		{name: "rejected for stock", reach: []any{stockRejected}, do: map[string]want{
			"StockReserved": {state: orders.SagaRejected, status: orders.StatusRejected, send: []string{cRelease}},
			"Cancel":        {err: orders.ErrNotCancellable},
			"Refund":        {err: orders.ErrNotRefundable},
		}},
		{name: "rejected after a decline", reach: []any{stockReserved, declined, released}, do: map[string]want{
			"StockReserved":     {state: orders.SagaRejected, status: orders.StatusRejected, send: []string{cRelease}},
			"PaymentAuthorized": {state: orders.SagaRejected, status: orders.StatusRejected, send: []string{cVoid}},
			"Cancel":            {err: orders.ErrNotCancellable},
			"Refund":            {err: orders.ErrNotRefundable},
		}},
		{name: "cancelled while pending", reach: []any{stockReserved, cancel, released, voided}, do: map[string]want{
			"StockReserved":     {state: orders.SagaCancelled, status: orders.StatusCancelled, send: []string{cRelease}},
			"PaymentAuthorized": {state: orders.SagaCancelled, status: orders.StatusCancelled, send: []string{cVoid}},
			"Cancel":            {err: orders.ErrNotCancellable},
			"Refund":            {err: orders.ErrNotRefundable},
		}},
		{name: "cancelled after confirmation", reach: []any{stockReserved, authorized, committed, captured, cancel, restocked, cancelRefunded}, do: map[string]want{
			"Cancel": {err: orders.ErrNotCancellable},
			"Refund": {err: orders.ErrNotRefundable},
		}},
	}
	for _, sit := range situations {
		for _, m := range messages {
			t.Run(sit.name+"/"+m.name, func(t *testing.T) {
				before := reach(t, sit.reach...)
				w, listed := sit.do[m.name]
				now := t0.Add(time.Hour)
				snapshot := reach(t, sit.reach...)
				r, err := saga.Apply(before.s, before.o, m.msg, now, timing)
				// Apply is pure: what it was given is unchanged.
				if diff := cmp.Diff(snapshot, before, cmp.AllowUnexported(situation{})); diff != "" {
					t.Fatalf("Apply changed its input (-before +after):\n%s", diff)
				}
				if w.err != nil || err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("err = %v, want %v", err, w.err)
					}
					return
				}
				if !listed {
					// Ignored: only the history grows, and the order mirrors the
					// refunds payments issued, whatever the state.
					w = want{state: before.s.State, status: before.o.Status, awaiting: before.s.Awaiting, refunded: before.o.Refunded}
					if ri, ok := m.msg.(payments.RefundIssued); ok {
						w.refunded = max(w.refunded, ri.TotalRefunded)
						listed = w.refunded != before.o.Refunded // a change: the note says so
					}
				}
				if w.status == "" {
					w.status = before.o.Status
				}
				checkResult(t, before, r, w, now)
				if !listed && !strings.Contains(r.Saga.History[len(r.Saga.History)-1].Note, "ignored") {
					t.Errorf("history note %q, want it to say the message was ignored", r.Saga.History[len(r.Saga.History)-1].Note)
				}
			})
		}
	}
}

func checkResult(t *testing.T, before situation, r saga.Result, w want, now time.Time) {
	t.Helper()
	if r.Saga.State != w.state {
		t.Errorf("state %s, want %s", r.Saga.State, w.state)
	}
	if r.Order.Status != w.status {
		t.Errorf("order status %s, want %s", r.Order.Status, w.status)
	}
	if w.reason != "" && !strings.Contains(strings.ToLower(r.Order.Reason), strings.ToLower(w.reason)) {
		t.Errorf("order reason %q, want it to contain %q", r.Order.Reason, w.reason)
	}
	if diff := cmp.Diff(w.send, types(r.Send)); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(w.awaiting, r.Saga.Awaiting); diff != "" && (len(w.awaiting) > 0 || len(r.Saga.Awaiting) > 0) {
		t.Errorf("awaiting (-want +got):\n%s", diff)
	}
	if r.Order.Refunded != w.refunded {
		t.Errorf("refunded %d, want %d", r.Order.Refunded, w.refunded)
	}
	orderChanged := r.Order.Status != before.o.Status || r.Order.Reason != before.o.Reason || r.Order.Refunded != before.o.Refunded
	if r.OrderChanged != orderChanged {
		t.Errorf("OrderChanged = %v, but the order changed: %v", r.OrderChanged, orderChanged)
	}
	wantVersion := before.o.Version
	if orderChanged {
		wantVersion++
	}
	if r.Order.Version != wantVersion {
		t.Errorf("order version %d, want %d", r.Order.Version, wantVersion)
	}
	if len(r.Saga.History) != len(before.s.History)+1 {
		t.Fatalf("history has %d steps, want %d", len(r.Saga.History), len(before.s.History)+1)
	}
	last := r.Saga.History[len(r.Saga.History)-1]
	if last.State != r.Saga.State || !last.At.Equal(now) {
		t.Errorf("last step %+v, want state %s at %v", last, r.Saga.State, now)
	}
	if saga.Terminal(r.Saga.State) && r.Saga.PaymentToken != "" {
		t.Errorf("a terminal saga keeps the payment token")
	}
}

// Events carry the order as it is after the change.
func TestEventsCarryTheChangedOrder(t *testing.T) {
	sit := reach(t, stockReserved)
	r, err := saga.Apply(sit.s, sit.o, authorized, t0.Add(time.Minute), timing)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.Send, func(o message.Outgoing) bool { return o.Type == eConfirmed })
	if i < 0 {
		t.Fatalf("no OrderConfirmed in %v", types(r.Send))
	}
	ev := r.Send[i].Payload.(orders.OrderConfirmed)
	if diff := cmp.Diff(r.Order, ev.Order); diff != "" {
		t.Errorf("event's order (-stored +event):\n%s", diff)
	}
	if ev.Order.Version != 2 || ev.Order.Status != orders.StatusConfirmed || !ev.Order.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("event's order %+v", ev.Order)
	}
}

// The commands carry what their receivers need; the token goes to payments only.
func TestCommandPayloads(t *testing.T) {
	o := newOrder()
	s, out := saga.Start(o, "tok_visa", t0, timing)
	if diff := cmp.Diff([]string{cReserve, orders.OrderPlacedEvent.Name()}, types(out)); diff != "" {
		t.Fatalf("Start sent (-want +got):\n%s", diff)
	}
	reserve := out[0].Payload.(inventory.ReserveStock)
	wantLines := []inventory.Line{{ProductID: "p1", SKU: "TEE-M", Quantity: 3}, {ProductID: "p2", SKU: "MUG", Quantity: 1}}
	if diff := cmp.Diff(inventory.ReserveStock{OrderID: orderID, Lines: wantLines, ExpiresAt: t0.Add(timing.ReservationTTL)}, reserve); diff != "" {
		t.Errorf("ReserveStock (-want +got):\n%s", diff)
	}
	if s.State != orders.SagaReserving || s.Attempts != 1 || !s.Deadline.Equal(t0.Add(timing.StepTimeout)) {
		t.Errorf("started saga %s, attempts %d, deadline %v", s.State, s.Attempts, s.Deadline)
	}
	r, err := saga.Apply(s, o, stockReserved, t0, timing)
	if err != nil {
		t.Fatal(err)
	}
	want := payments.AuthorizePayment{PayableID: orderID, Payable: payments.PayableOrder, CustomerID: o.CustomerID,
		Amount: payments.Money{Amount: 5000, Currency: "EUR"}, PaymentToken: "tok_visa"}
	if diff := cmp.Diff(want, r.Send[0].Payload); diff != "" {
		t.Errorf("AuthorizePayment (-want +got):\n%s", diff)
	}
	r, _ = saga.Apply(r.Saga, r.Order, authorized, t0, timing)
	if r.Saga.PaymentToken != "" {
		t.Errorf("the token is kept after authorization")
	}
	for _, m := range r.Send {
		if strings.Contains(fmt.Sprint(m.Payload), "tok_visa") {
			t.Errorf("%s carries the token", m.Type)
		}
	}
}

// A pending step is sent MaxAttempts times, with growing delays, before the saga
// gives up; a confirmed one is sent again forever, its delay capped.
func TestTimeoutBackoff(t *testing.T) {
	sit := reach(t)
	now := t0
	var delays []time.Duration
	for sit.s.State == orders.SagaReserving {
		now = sit.s.Deadline
		r, err := saga.Apply(sit.s, sit.o, timeout, now, timing)
		if err != nil {
			t.Fatal(err)
		}
		sit = situation{r.Saga, r.Order}
		delays = append(delays, sit.s.Deadline.Sub(now))
	}
	if diff := cmp.Diff([]time.Duration{20 * time.Second, 40 * time.Second, 10 * time.Second}, delays); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	if sit.s.State != orders.SagaCompensating || sit.o.Status != orders.StatusRejected {
		t.Errorf("after the attempts: %s, order %s", sit.s.State, sit.o.Status)
	}
	sit = reach(t, stockReserved, authorized)
	for i := 0; i < 30; i++ {
		r, err := saga.Apply(sit.s, sit.o, timeout, sit.s.Deadline, timing)
		if err != nil {
			t.Fatal(err)
		}
		if r.Saga.State != orders.SagaCompleting || r.Order.Status != orders.StatusConfirmed {
			t.Fatalf("timeout %d moved a confirmed order to %s/%s", i, r.Saga.State, r.Order.Status)
		}
		if d := r.Saga.Deadline.Sub(sit.s.Deadline); d > 32*timing.StepTimeout {
			t.Fatalf("delay %v is not capped", d)
		}
		sit = situation{r.Saga, r.Order}
	}
}

// The same refund id refunds once; a refund over what is left is refused.
func TestRefundIdempotentAndBounded(t *testing.T) {
	sit := reach(t, stockReserved, authorized, committed, captured)
	r, err := saga.Apply(sit.s, sit.o, refund, t0, timing)
	if err != nil || len(r.Send) != 1 {
		t.Fatalf("refund: %v, sent %v", err, types(r.Send))
	}
	again, err := saga.Apply(r.Saga, r.Order, refund, t0, timing)
	if err != nil || len(again.Send) != 0 {
		t.Errorf("the same refund again: %v, sent %v", err, types(again.Send))
	}
	_, err = saga.Apply(r.Saga, r.Order, saga.RefundRequest{RefundID: "r-2", Amount: 5001}, t0, timing)
	if !errors.Is(err, orders.ErrNotRefundable) {
		t.Errorf("refund over the total: %v", err)
	}
	full := r.Order
	full.Refunded = full.Total.Amount
	_, err = saga.Apply(r.Saga, full, saga.RefundRequest{RefundID: "r-3"}, t0, timing)
	if !errors.Is(err, orders.ErrNotRefundable) {
		t.Errorf("refund of a fully refunded order: %v", err)
	}
}

// The history keeps the placement and the latest steps.
func TestHistoryIsBounded(t *testing.T) {
	sit := reach(t, stockReserved, authorized, committed, captured)
	for i := 0; i < saga.MaxHistory+10; i++ {
		r, _ := saga.Apply(sit.s, sit.o, stockReserved, t0, timing)
		sit = situation{r.Saga, r.Order}
	}
	if len(sit.s.History) != saga.MaxHistory {
		t.Errorf("%d steps, want %d", len(sit.s.History), saga.MaxHistory)
	}
	if sit.s.History[0].Message != orders.PlaceOrderRequest.Name() {
		t.Errorf("first step %+v, want the placement", sit.s.History[0])
	}
}

// A decline says in the saga's history whether the payment may go through if tried
// again (PaymentDeclined v2), and a version 1 decline, which cannot say, reads as
// not retryable.
func TestDeclineNotesRetryable(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  payments.PaymentDeclined
		want string
	}{
		{"v2, provider's trouble", payments.PaymentDeclined{PayableID: orderID, Reason: payments.DeclineProviderTimeout, Retryable: true}, "may take the payment if it is tried again"},
		{"v2, card refused", payments.PaymentDeclined{PayableID: orderID, Reason: payments.DeclineCardDeclined}, "declined (card_declined)"},
		{"v1", declined, "declined (insufficient_funds)"},
	} {
		sit := reach(t, stockReserved)
		r, err := saga.Apply(sit.s, sit.o, tc.msg, t0.Add(time.Minute), timing)
		if err != nil {
			t.Fatal(err)
		}
		note := r.Saga.History[len(r.Saga.History)-1].Note
		if !strings.Contains(note, tc.want) || (!tc.msg.Retryable && strings.Contains(note, "tried again")) {
			t.Errorf("%s: note %q, want %q", tc.name, note, tc.want)
		}
	}
}
