package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/payments"
)

// TestLedgerRefusesInCode: the ledger's movements refuse what would break its
// invariants, before anything reaches the database.
func TestLedgerRefusesInCode(t *testing.T) {
	now := time.Now()
	authorizing := payment{OrderID: "o", Status: string(payments.StatusAuthorizing), Amount: 1000, Currency: "EUR"}

	p := authorizing
	if _, err := p.capture(now); !errors.Is(err, errInvariant) {
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
	if _, err := p.capture(now); err != nil {
		t.Fatal(err)
	}
	if p.Captured != 1000 || p.Captured > p.Authorized {
		t.Fatalf("captured %d of %d", p.Captured, p.Authorized)
	}
	if _, err := p.capture(now); !errors.Is(err, errInvariant) {
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
}

// TestLedgerRefusesInDatabase: the CHECK constraints and unique indexes refuse the
// same, whatever the code does.
func TestLedgerRefusesInDatabase(t *testing.T) {
	testdb.EachHost(t, "payments", func(t *testing.T, h *modhost.Host) {
		ctx := t.Context()
		r := repo{dialect: h.DB.Dialect}
		now := time.Now()
		p := payment{OrderID: "o1", Status: string(payments.StatusCaptured), Amount: 1000, Currency: "EUR",
			Authorized: 1000, Captured: 1000, Refunded: 200, CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli()}
		if err := r.insertPayment(ctx, h.DB, p); err != nil {
			t.Fatal(err)
		}
		if err := r.addEntry(ctx, h.DB, p.entry(kindCaptured, 1000, "auth", "", now)); err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			name string
			sql  string
		}{
			{"captured beyond authorized", `UPDATE payments SET captured = 1001 WHERE order_id = 'o1'`},
			{"refunded beyond captured", `UPDATE payments SET refunded = 1001 WHERE order_id = 'o1'`},
			{"negative amount", `UPDATE payments SET refunded = -1 WHERE order_id = 'o1'`},
			{"unknown status", `UPDATE payments SET status = 'paid' WHERE order_id = 'o1'`},
			{"captured twice", `INSERT INTO payment_entries (id, order_id, kind, amount, currency, created_at)
				VALUES ('e2', 'o1', 'captured', 1000, 'EUR', 0)`},
			{"entry of no payment", `INSERT INTO payment_entries (id, order_id, kind, amount, currency, created_at)
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
		if _, err := r.payment(ctx, h.DB, "missing", false); !errors.Is(err, payments.ErrPaymentNotFound) {
			t.Errorf("missing payment: err = %v", err)
		}
	})
}
