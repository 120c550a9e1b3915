package trips

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

// The dispatches gauge reads the counts by state from the database, on either store.
func TestCountDispatches(t *testing.T) {
	testdb.EachHost(t, "rides", func(t *testing.T, h *modhost.Host) {
		ctx := context.Background()
		now := time.Now().UTC()
		for i, st := range []rides.DispatchState{rides.DispatchOffering, rides.DispatchCompleted, rides.DispatchCompleted} {
			s := dispatch.Saga{RideID: fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i), State: st, Deadline: now, CreatedAt: now, UpdatedAt: now}
			if err := (Repo{dialect: h.DB.Dialect}).InsertSaga(ctx, h.DB, s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := (&Service{db: h.DB}).countDispatches(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byLabel := map[string]int64{}
		for _, c := range got {
			byLabel[c.Label] = c.N
		}
		if diff := cmp.Diff(map[string]int64{"completed": 2, "offering": 1}, byLabel); diff != "" {
			t.Fatalf("countDispatches (-want +got):\n%s", diff)
		}
	})
}
