package jobs_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/jobs"
	"github.com/agora-commerce/agora/internal/store"
)

// A restarted instance takes back at once what its crashed run still held, however
// long the leases; another instance leaves those jobs alone until they run out.
func TestARestartedInstanceTakesBackItsClaims(t *testing.T) {
	each(t, []string{"a", "b", "c"}, func(t *testing.T, db *store.DB) {
		t.Cleanup(func() { jobs.SetInstance("") })
		long := jobs.Policy{Lease: time.Hour}
		jobs.SetInstance("host-1:8080")
		crashed := jobs.New(db, tasks, long)
		if got := claim(t, crashed, 2); len(got) != 2 {
			t.Fatalf("first run claimed %v, want two jobs", got)
		}
		// The run dies without releasing anything.

		jobs.SetInstance("host-2:8080")
		other := jobs.New(db, tasks, long)
		if got := claim(t, other, 10); !cmp.Equal(got, []string{"c"}) {
			t.Fatalf("another instance claimed %v; want only the free job c", got)
		}

		jobs.SetInstance("host-1:8080") // the crashed process, started again
		restarted := jobs.New(db, tasks, long)
		if got := claim(t, restarted, 10); !cmp.Equal(slices.Sorted(slices.Values(got)), []string{"a", "b"}) {
			t.Fatalf("the restarted instance claimed %v; want its predecessor's a and b at once", got)
		}
		if got := claim(t, jobs.New(db, tasks, long), 10); len(got) != 0 {
			t.Fatalf("a second queue of the same run claimed %v; it must not take its sibling's jobs", got)
		}
	})
}
