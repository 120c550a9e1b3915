package site

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/modules/inventory"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/payments"
)

// consoleState is the live part of the console: where modules run, their
// outboxes, the payment provider and this process's message flow.
type consoleState struct {
	Placements []modhost.Placement
	Outboxes   []outboxRow
	Provider   providerRow
	Flow       []flowRow
	At         time.Time
}

// outboxRow is one module's outbox backlog, or why it could not be read.
type outboxRow struct {
	modhost.OutboxStatus
	Problem string
}

// providerRow is the payment provider's breaker, or why it could not be read.
type providerRow struct {
	payments.ProviderState
	Problem string
}

func (consoleState) PageTitle() string { return "Console" }

// snapshot asks every module, at once, for the console's live state; each part
// that cannot be had says why instead of failing the page.
func (s *Site) snapshot(ctx context.Context) consoleState {
	st := consoleState{Outboxes: make([]outboxRow, len(s.roster.WithData)), At: time.Now().UTC()}
	var wg sync.WaitGroup
	wg.Go(func() { st.Placements = modhost.Locate(ctx, s.bus, s.roster.Modules) })
	for i, m := range s.roster.WithData {
		wg.Go(func() {
			o, err := bus.Call(ctx, s.bus, modhost.OutboxStatusRequest(m), struct{}{})
			st.Outboxes[i] = outboxRow{OutboxStatus: o, Problem: problem(err)}
			st.Outboxes[i].Module = m
		})
	}
	wg.Go(func() {
		p, err := bus.Call(ctx, s.bus, payments.ProviderStatusRequest, payments.ProviderStatus{})
		st.Provider = providerRow{ProviderState: p, Problem: problem(err)}
	})
	wg.Wait()
	st.Flow = s.flow()
	return st
}

// problem is what the console shows for a part it could not read.
func problem(err error) string {
	if err == nil {
		return ""
	}
	return message.AsError(err).Message
}

func (s *Site) console(w http.ResponseWriter, r *http.Request, v *visit) error {
	s.render(w, r, v, http.StatusOK, "console", s.snapshot(r.Context()))
	return nil
}

// consoleLive streams the console's live panel as server-sent events: an event
// "state" with the panel's HTML whenever it changed, looked at every two seconds,
// until the request's deadline or streamFor (the browser reconnects).
func (s *Site) consoleLive(w http.ResponseWriter, r *http.Request, _ *visit) error {
	ctx := r.Context()
	s.poll(ctx, startEvents(w), 2*time.Second, "state", func() (string, bool) {
		st := s.snapshot(ctx)
		st.At = time.Time{} // the time alone is no change
		return s.fragment("console", "live", st), true
	})
	return nil
}

// sagasPage is a page of checkout sagas in one state (all states when empty).
type sagasPage struct {
	State  orders.SagaState
	States []orders.SagaState
	Items  []orders.Saga
	Next   string
}

func (sagasPage) PageTitle() string { return "Sagas" }

var sagaStates = []orders.SagaState{orders.SagaReserving, orders.SagaAuthorizing, orders.SagaCompleting,
	orders.SagaCompensating, orders.SagaCompleted, orders.SagaRejected, orders.SagaCancelled}

func (s *Site) sagas(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	state := orders.SagaState(q.Get("state"))
	if state != "" && !slices.Contains(sagaStates, state) {
		return errInvalidForm
	}
	page, err := bus.Call(r.Context(), s.bus, orders.ListSagasRequest, orders.ListSagas{
		State: state, After: bounded(q.Get("after"), 64), Limit: 50})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "sagas", sagasPage{State: state, States: sagaStates, Items: page.Items, Next: page.NextAfter})
	return nil
}

// sagaPage is one saga's history, with its order.
type sagaPage struct {
	Saga  orders.Saga
	Order orders.Order
}

func (p sagaPage) PageTitle() string { return "Saga " + p.Saga.OrderID[:8] }

func (s *Site) saga(w http.ResponseWriter, r *http.Request, v *visit) error {
	id := r.PathValue("id")
	sg, err := bus.Call(r.Context(), s.bus, orders.GetSagaRequest, orders.GetSaga{OrderID: id})
	if err != nil {
		return err
	}
	o, err := bus.Call(r.Context(), s.bus, orders.GetOrderRequest, orders.GetOrder{ID: id})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "saga", sagaPage{Saga: sg, Order: o})
	return nil
}

// deadLettersPage is a module's dead letters.
type deadLettersPage struct {
	Module string
	Items  []deadLetterRow
	Done   string // the id just redriven
}

// deadLetterRow is one dead letter as the console shows it: never its payload,
// which may carry customer data.
type deadLetterRow struct {
	ID, Type, Error string
	Attempts        int
}

func (p deadLettersPage) PageTitle() string { return "Dead letters of " + p.Module }

func (s *Site) deadLetters(w http.ResponseWriter, r *http.Request, v *visit) error {
	m := r.PathValue("module")
	if !slices.Contains(s.roster.WithData, m) {
		return errUnknownModule
	}
	page, err := bus.Call(r.Context(), s.bus, modhost.ListDeadLettersRequest(m), modhost.ListDeadLetters{Limit: 100})
	if err != nil {
		return err
	}
	data := deadLettersPage{Module: m, Done: bounded(r.URL.Query().Get("redriven"), 64)}
	for _, d := range page.Items {
		data.Items = append(data.Items, deadLetterRow{ID: d.ID, Type: d.Type, Error: bounded(d.LastError, 500), Attempts: d.Attempts})
	}
	s.render(w, r, v, http.StatusOK, "deadletters", data)
	return nil
}

var errUnknownModule = message.NewError(message.NotFound, "web.unknown_module", "there is no such module")

// redrive puts a dead letter back in line for delivery.
func (s *Site) redrive(w http.ResponseWriter, r *http.Request, _ *visit) error {
	m, id := r.PathValue("module"), r.PathValue("id")
	if !slices.Contains(s.roster.WithData, m) {
		return errUnknownModule
	}
	if _, err := bus.Call(r.Context(), s.bus, modhost.RedriveDeadLetterRequest(m), modhost.RedriveDeadLetter{ID: id}); err != nil {
		return err
	}
	http.Redirect(w, r, "/console/dead-letters/"+m+"?redriven="+id, http.StatusSeeOther)
	return nil
}

// inventoryPage is a page of stock items.
type inventoryPage struct {
	Items []inventory.Item
	Next  string
}

func (inventoryPage) PageTitle() string { return "Inventory" }

func (s *Site) inventory(w http.ResponseWriter, r *http.Request, v *visit) error {
	page, err := bus.Call(r.Context(), s.bus, inventory.ListItemsRequest, inventory.ListItems{
		After: bounded(r.URL.Query().Get("after"), 64), Limit: 50})
	if err != nil {
		return err
	}
	s.render(w, r, v, http.StatusOK, "inventory", inventoryPage{Items: page.Items, Next: page.NextAfter})
	return nil
}

// itemPage is one stock item, its adjustments and the form to make one.
type itemPage struct {
	Item        inventory.Item
	Adjustments []inventory.Adjustment
	Error       string
}

func (p itemPage) PageTitle() string { return "Stock of " + p.Item.SKU }

func (s *Site) item(w http.ResponseWriter, r *http.Request, v *visit) error {
	return s.showItem(w, r, v, http.StatusOK, "")
}

func (s *Site) showItem(w http.ResponseWriter, r *http.Request, v *visit, status int, problem string) error {
	sku := r.PathValue("sku")
	it, err := bus.Call(r.Context(), s.bus, inventory.GetItemRequest, inventory.GetItem{SKU: sku})
	if err != nil {
		return err
	}
	adj, err := bus.Call(r.Context(), s.bus, inventory.ListAdjustmentsRequest, inventory.ListAdjustments{SKU: sku, Limit: 20})
	if err != nil {
		return err
	}
	s.render(w, r, v, status, "item", itemPage{Item: it, Adjustments: adj.Items, Error: problem})
	return nil
}

// adjust changes an item's stock on hand, audited with the admin as its actor and
// bound to the version the form showed (a stale form is refused, not applied twice).
func (s *Site) adjust(w http.ResponseWriter, r *http.Request, v *visit) error {
	delta, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("delta")), 10, 64)
	version, verr := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || verr != nil || delta == 0 || delta > inventory.MaxAdjustment || delta < -inventory.MaxAdjustment {
		return s.showItem(w, r, v, http.StatusUnprocessableEntity, "Enter a whole number of units to add (or, negative, to remove), other than 0.")
	}
	sku := r.PathValue("sku")
	_, err = bus.Call(r.Context(), s.bus, inventory.AdjustRequest, inventory.Adjust{SKU: sku, Delta: delta,
		Reason: bounded(r.PostFormValue("reason"), inventory.MaxReasonLen), Actor: v.who.UserID, ExpectedVersion: version})
	if err != nil {
		be := message.AsError(err)
		if be.Kind == message.Invalid || be.Kind == message.Precondition || be.Kind == message.Conflict {
			status, _ := errorStatus(be.Kind)
			return s.showItem(w, r, v, status, be.Message)
		}
		return err
	}
	http.Redirect(w, r, "/console/inventory/"+sku, http.StatusSeeOther)
	return nil
}
