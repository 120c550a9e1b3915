package checkout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/orders"
	"github.com/agora-commerce/agora/modules/orders/internal/saga"
)

// The sagas gauge reads the counts by state from the database, on either store.
func TestCountSagas(t *testing.T) {
	testdb.EachHost(t, "orders", func(t *testing.T, h *modhost.Host) {
		ctx := context.Background()
		now := time.Now().UTC()
		for i, st := range []orders.SagaState{orders.SagaReserving, orders.SagaCompleted, orders.SagaCompleted} {
			s := saga.Saga{OrderID: fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i), State: st, Deadline: now, CreatedAt: now, UpdatedAt: now}
			if err := (Repo{dialect: h.DB.Dialect}).InsertSaga(ctx, h.DB, s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := (&Service{db: h.DB}).countSagas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byLabel := map[string]int64{}
		for _, c := range got {
			byLabel[c.Label] = c.N
		}
		if diff := cmp.Diff(map[string]int64{"completed": 2, "reserving": 1}, byLabel); diff != "" {
			t.Fatalf("countSagas (-want +got):\n%s", diff)
		}
	})
}
