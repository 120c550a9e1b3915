package trips

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/rides"
	"github.com/agora-commerce/agora/modules/rides/internal/dispatch"
)

// The database itself keeps a driver to one active ride and one open offer, and a
// rider to one active ride, however many transactions try at once.
func TestOneActiveRidePerDriver(t *testing.T) {
	testdb.EachHost(t, "rides", func(t *testing.T, h *modhost.Host) {
		ctx := context.Background()
		repo := Repo{dialect: h.DB.Dialect}
		now := time.Now().UTC()
		const n = 10
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("0190a8b2-0000-7000-8000-%012d", i)
			r := rides.Ride{ID: ids[i], RiderID: "rider-" + ids[i], Status: rides.StatusRequested, Version: 1, CreatedAt: now, UpdatedAt: now}
			s := dispatch.Saga{RideID: ids[i], State: rides.DispatchOffering, Deadline: now}
			if err := store.InTx(ctx, h.DB, func(tx *store.Tx) error {
				if err := repo.InsertRide(ctx, tx, r); err != nil {
					return err
				}
				return repo.InsertSaga(ctx, tx, s)
			}); err != nil {
				t.Fatal(err)
			}
		}
		again := rides.Ride{ID: "another", RiderID: "rider-" + ids[0], Status: rides.StatusRequested, Version: 1}
		if err := repo.InsertRide(ctx, h.DB, again); !errors.Is(err, errRiderBusy) {
			t.Errorf("a rider's second active ride: %v, want errRiderBusy", err)
		}
		results := make([]error, n)
		offers := make([]error, n)
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				results[i] = store.InTx(ctx, h.DB, func(tx *store.Tx) error {
					r, err := repo.GetRide(ctx, tx, id, true)
					if err != nil {
						return err
					}
					r.DriverID, r.Status, r.Version = "d1", rides.StatusDriverAssigned, r.Version+1
					return repo.UpdateRide(ctx, tx, r)
				})
				offers[i] = store.InTx(ctx, h.DB, func(tx *store.Tx) error {
					return repo.UpdateSaga(ctx, tx, dispatch.Saga{RideID: id, State: rides.DispatchOffering, Deadline: now,
						Offer: &rides.Offer{RideID: id, DriverID: "d2"}})
				})
			})
		}
		wg.Wait()
		count := func(errs []error, refused error) (ok int) {
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, refused):
					t.Errorf("unexpected error: %v", err)
				}
			}
			return ok
		}
		if ok := count(results, errDriverBusy); ok != 1 {
			t.Errorf("%d rides assigned to one driver, want 1", ok)
		}
		if ok := count(offers, errOfferTaken); ok != 1 {
			t.Errorf("%d offers open to one driver, want 1", ok)
		}
	})
}
