package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/testlog"
)

// The ride tour runs on every layout of the topology matrix: a rider asks for a
// quote and a ride; the demo fleet (`serve --demo` runs it in the process that runs
// fleet) accepts and drives it; the rider follows it on its event stream to the
// receipt; the fare is captured in the ride's payments ledger; the rider is notified.
// In a split layout this crosses fleet, rides, payments, identity and notifications,
// each in its own process.

// ride is what the tour reads of a ride.
type ride struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	DriverID string `json:"driver_id"`
	Fare     money  `json:"fare"`
	Charged  *money `json:"charged"`
	Reason   string `json:"reason"`
	Version  int64  `json:"version"`
}

// Two places on the demo city's streets (central Berlin).
var (
	pickup  = map[string]float64{"lat": 52.5163, "lng": 13.3777}
	dropoff = map[string]float64{"lat": 52.5200, "lng": 13.4050}
)

func rideTour(t *testing.T, d *deployment) {
	a := d.entry
	s := newShop(t, func() string { return a.base })
	ctx := t.Context()
	rider := signUpMany(t, s, 1)[0]

	var quote struct {
		Fare  money   `json:"fare"`
		Surge float64 `json:"surge"`
	}
	trip := map[string]any{"pickup": pickup, "dropoff": dropoff}
	if _, err := s.call(ctx, http.MethodPost, "/v1/rides/quotes", rider, trip, &quote, []int{http.StatusOK}); err != nil {
		t.Fatal(err)
	}
	if quote.Fare.Amount <= 0 || quote.Fare.Currency != "EUR" || quote.Surge < 1 {
		t.Fatalf("quote %+v: want a positive EUR fare and a surge of at least 1", quote)
	}

	var r ride
	trip["payment_token"] = "tok_visa"
	// A request that fails in transit (a process of a split layout still starting
	// its consumers) is sent again with the same key: one ride, whatever happens.
	h, err := retrying(ctx, func() (http.Header, error) {
		return s.call(ctx, http.MethodPost, "/v1/rides", rider, trip, &r, []int{http.StatusAccepted}, "Idempotency-Key", "ride-tour-1")
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("Location") != "/v1/rides/"+r.ID {
		t.Errorf("Location %q, want /v1/rides/%s", h.Get("Location"), r.ID)
	}

	statuses, final := followRide(t, a.base, rider, r.ID)
	if final.Status != "completed" || final.Charged == nil || final.Charged.Amount != final.Fare.Amount {
		t.Fatalf("ride ended %+v after %v: want completed with the fare charged", final, statuses)
	}
	if !inOrder(statuses, "driver_assigned", "arriving", "in_trip", "completed") {
		t.Errorf("the stream showed %v: want driver_assigned, arriving, in_trip, completed in that order", statuses)
	}

	// The ride is completed when the driver says so; the capture follows (the saga
	// sends it until payments acknowledges it): the ledger catches up.
	var ledger struct {
		Payable  string `json:"payable"`
		Status   string `json:"status"`
		Captured int64  `json:"captured"`
	}
	testlog.Eventually(t, "the ride's capture in its ledger", func() bool {
		if _, err := s.call(ctx, http.MethodGet, "/v1/payments/"+r.ID, a.token, nil, &ledger, []int{http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		return ledger.Status == "captured"
	})
	if ledger.Payable != "ride" || ledger.Status != "captured" || ledger.Captured != final.Fare.Amount {
		t.Errorf("the ride's ledger %+v: want a ride's payment, captured, %d", ledger, final.Fare.Amount)
	}
	awaitReceipt(t, s, rider, r.ID)
}

// followRide follows a ride on its event stream until it is final, reconnecting as
// a client would, and returns the statuses it saw, in order, and the final ride.
func followRide(t *testing.T, base, token, id string) ([]string, ride) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var seen []string
	var last ride
	client := checkedClient(t, 0) // no timeout: the stream lasts as long as the ride or order
	for last.Status != "completed" && last.Status != "cancelled" {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/rides/"+id+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/event-stream")
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("ride stream: %v (last %+v, seen %v)", err, last, seen)
		}
		if res.StatusCode != http.StatusOK {
			_ = res.Body.Close()
			t.Fatalf("ride stream: status %d", res.StatusCode)
		}
		event := ""
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				event = e
				continue
			}
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || event == "position" {
				continue
			}
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatalf("ride stream event %q: %v", data, err)
			}
			if len(seen) == 0 || seen[len(seen)-1] != last.Status {
				seen = append(seen, last.Status)
			}
		}
		_ = res.Body.Close()
	}
	return seen, last
}

// inOrder reports whether want appear in seen in that order (others may come between).
func inOrder(seen []string, want ...string) bool {
	for _, s := range seen {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// awaitReceipt waits for the rider's notification of the completed ride.
func awaitReceipt(t *testing.T, s *shop, token, rideID string) {
	t.Helper()
	testlog.Eventually(t, "the ride's receipt among the rider's notifications", func() bool {
		type notice struct {
			Kind   string `json:"kind"`
			RideID string `json:"ride_id"`
		}
		var page struct {
			Items []notice `json:"items"`
		}
		if _, err := s.call(t.Context(), http.MethodGet, "/v1/notifications", token, nil, &page, []int{http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(page.Items, notice{Kind: "ride_completed", RideID: rideID})
	})
}
