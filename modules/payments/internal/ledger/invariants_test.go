package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/payments"
)

// TestLedgerRefusesInCode: the ledger's movements refuse what would break its
// invariants, before anything reaches the database — for an order's payment and a
// ride's alike.
func TestLedgerRefusesInCode(t *testing.T) {
	for _, payable := range []payments.Payable{payments.PayableOrder, payments.PayableRide} {
		t.Run(string(payable), func(t *testing.T) {
			now := time.Now()
			p := payment{PayableID: "p", Payable: string(payable), Status: string(payments.StatusAuthorizing), Amount: 1000, Currency: "EUR"}
			if _, err := p.capture(0, now); !errors.Is(err, errInvariant) {
				t.Errorf("capture without authorization: err = %v", err)
			}
			if _, err := p.refund(1, "", "", now); !errors.Is(err, errInvariant) {
				t.Errorf("refund without capture: err = %v", err)
			}
			if _, err := p.authorize("auth_1", now); err != nil {
				t.Fatal(err)
			}
			if _, err := p.authorize("auth_2", now); !errors.Is(err, errInvariant) {
				t.Errorf("authorize twice: err = %v", err)
			}
			if _, err := p.capture(1001, now); !errors.Is(err, errInvariant) {
				t.Errorf("capture beyond authorized: err = %v", err)
			}
			if _, err := p.capture(0, now); err != nil {
				t.Fatal(err)
			}
			if p.Captured != 1000 || p.Captured > p.Authorized {
				t.Fatalf("captured %d of %d", p.Captured, p.Authorized)
			}
			if _, err := p.capture(0, now); !errors.Is(err, errInvariant) {
				t.Errorf("capture twice: err = %v", err)
			}
			if _, err := p.void("", "", now); !errors.Is(err, errInvariant) {
				t.Errorf("void after capture: err = %v", err)
			}
			if _, err := p.refund(600, "", "", now); err != nil {
				t.Fatal(err)
			}
			if _, err := p.refund(401, "", "", now); !errors.Is(err, errInvariant) {
				t.Errorf("refund beyond captured: err = %v", err)
			}
			if _, err := p.refund(400, "", "", now); err != nil {
				t.Fatal(err)
			}
			if p.Status != string(payments.StatusRefunded) || p.Refunded != 1000 {
				t.Errorf("after refunding all: %+v", p)
			}
		})
	}
}

// TestPartialCaptureReleasesTheRest: a capture of less than the authorization (a
// ride's cancellation fee) takes that much, records the rest as released, and
// bounds every later movement by what was taken.
func TestPartialCaptureReleasesTheRest(t *testing.T) {
	for _, payable := range []payments.Payable{payments.PayableOrder, payments.PayableRide} {
		t.Run(string(payable), func(t *testing.T) {
			now := time.Now()
			p := payment{PayableID: "p", Payable: string(payable), Status: string(payments.StatusAuthorizing), Amount: 2500, Currency: "EUR"}
			if _, err := p.authorize("auth_1", now); err != nil {
				t.Fatal(err)
			}
			if _, err := p.capture(-1, now); !errors.Is(err, errInvariant) {
				t.Errorf("capture of a negative amount: err = %v", err)
			}
			es, err := p.capture(500, now)
			if err != nil {
				t.Fatal(err)
			}
			type move struct {
				Kind   string
				Amount int64
				Reason string
			}
			var got []move
			for _, e := range es {
				got = append(got, move{e.Kind, e.Amount, e.Reason})
			}
			want := []move{{kindCaptured, 500, ""}, {kindVoided, 2000, ReasonPartialCapture}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if p.Status != string(payments.StatusCaptured) || p.Captured != 500 || p.Authorized != 500 {
				t.Errorf("after a partial capture: %+v", p)
			}
			if _, err := p.capture(500, now); !errors.Is(err, errInvariant) {
				t.Errorf("capture twice: err = %v", err)
			}
			if _, err := p.void("", "", now); !errors.Is(err, errInvariant) {
				t.Errorf("void after a partial capture: err = %v", err)
			}
			if _, err := p.refund(501, "", "", now); !errors.Is(err, errInvariant) {
				t.Errorf("refund beyond the partial capture: err = %v", err)
			}
			if _, err := p.refund(500, "", "", now); err != nil || p.Status != string(payments.StatusRefunded) {
				t.Errorf("refund of the partial capture: err = %v, payment %+v", err, p)
			}
		})
	}
}

// TestLedgerRefusesInDatabase: the CHECK constraints and unique indexes refuse the
// same, whatever the code does.
func TestLedgerRefusesInDatabase(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		r := repo{dialect: h.DB.Dialect}
		now := time.Now()
		p := payment{PayableID: "o1", Payable: string(payments.PayableOrder), Status: string(payments.StatusCaptured), Amount: 1000, Currency: "EUR",
			Authorized: 1000, Captured: 1000, Refunded: 200, CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli()}
		if err := r.insertPayment(ctx, h.DB, p); err != nil {
			t.Fatal(err)
		}
		if err := r.addEntry(ctx, h.DB, p.entry(kindCaptured, 1000, "auth", "", now)); err != nil {
			t.Fatal(err)
		}
		// A ride's cancellation fee: 500 of 2500 captured, the rest released.
		ride := payment{PayableID: "r1", Payable: string(payments.PayableRide), Status: string(payments.StatusAuthorized), Amount: 2500,
			Currency: "EUR", Authorized: 2500, CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli()}
		es, err := ride.capture(500, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.insertPayment(ctx, h.DB, ride); err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if err := r.addEntry(ctx, h.DB, e); err != nil {
				t.Fatal(err)
			}
		}
		bad := []struct {
			name string
			sql  string
		}{
			{"captured beyond authorized", `UPDATE payments SET captured = 1001 WHERE payable_id = 'o1'`},
			{"refunded beyond captured", `UPDATE payments SET refunded = 1001 WHERE payable_id = 'o1'`},
			{"negative amount", `UPDATE payments SET refunded = -1 WHERE payable_id = 'o1'`},
			{"unknown status", `UPDATE payments SET status = 'paid' WHERE payable_id = 'o1'`},
			{"unknown payable", `UPDATE payments SET payable = 'boat' WHERE payable_id = 'o1'`},
			{"a ride's capture beyond authorized", `UPDATE payments SET captured = 501 WHERE payable_id = 'r1'`},
			{"released twice", `INSERT INTO payment_entries (id, payable_id, kind, amount, currency, created_at)
				VALUES ('e4', 'r1', 'voided', 1, 'EUR', 0)`},
			{"captured twice", `INSERT INTO payment_entries (id, payable_id, kind, amount, currency, created_at)
				VALUES ('e2', 'o1', 'captured', 1000, 'EUR', 0)`},
			{"entry of no payment", `INSERT INTO payment_entries (id, payable_id, kind, amount, currency, created_at)
				VALUES ('e3', 'nope', 'refunded', 1, 'EUR', 0)`},
		}
		for _, tc := range bad {
			if _, err := h.DB.ExecContext(ctx, tc.sql); err == nil {
				t.Errorf("%s: the database accepted it", tc.name)
			}
		}
		got, err := r.payment(ctx, h.DB, "o1", false)
		if err != nil {
			t.Fatal(err)
		}
		if got != p {
			t.Errorf("payment changed: %+v, want %+v", got, p)
		}
		if got, err := r.payment(ctx, h.DB, "r1", false); err != nil || got != ride {
			t.Errorf("ride's payment changed: %+v (err %v), want %+v", got, err, ride)
		}
		if _, err := r.payment(ctx, h.DB, "missing", false); !errors.Is(err, payments.ErrPaymentNotFound) {
			t.Errorf("missing payment: err = %v", err)
		}
	})
}
