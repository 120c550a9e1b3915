package paging_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/paging"
)

func TestLimit(t *testing.T) {
	tests := []struct{ requested, def, max, want int }{
		{requested: 0, def: 20, max: 100, want: 20},
		{requested: -5, def: 20, max: 100, want: 20},
		{requested: 1, def: 20, max: 100, want: 1},
		{requested: 100, def: 20, max: 100, want: 100},
		{requested: 101, def: 20, max: 100, want: 100},
		{requested: 0, def: 100, max: 100, want: 100},
	}
	for _, tt := range tests {
		if got := paging.Limit(tt.requested, tt.def, tt.max); got != tt.want {
			t.Errorf("Limit(%d, %d, %d) = %d, want %d", tt.requested, tt.def, tt.max, got, tt.want)
		}
	}
}

type row struct{ ID int }

func TestRead(t *testing.T) {
	rows := func(n int) []row {
		var out []row
		for i := 1; i <= n; i++ {
			out = append(out, row{ID: i})
		}
		return out
	}
	tests := []struct {
		name      string
		stored    int // rows the store holds past the cursor
		limit     int
		wantItems []row
		wantNext  string
	}{
		{name: "empty", stored: 0, limit: 3, wantItems: nil},
		{name: "short page", stored: 2, limit: 3, wantItems: rows(2)},
		{name: "exactly full, last page", stored: 3, limit: 3, wantItems: rows(3)},
		{name: "one more follows", stored: 4, limit: 3, wantItems: rows(3), wantNext: "3"},
		{name: "many more follow", stored: 50, limit: 3, wantItems: rows(3), wantNext: "3"},
		{name: "pages of one", stored: 2, limit: 1, wantItems: rows(1), wantNext: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked int
			fetch := func(n int) ([]row, error) {
				asked = n
				return rows(min(n, tt.stored)), nil
			}
			items, next, err := paging.Read(tt.limit, fetch, func(r row) string { return strconv.Itoa(r.ID) })
			if err != nil {
				t.Fatal(err)
			}
			if asked != tt.limit+1 {
				t.Errorf("fetch asked for %d rows, want limit+1 = %d", asked, tt.limit+1)
			}
			if diff := cmp.Diff(tt.wantItems, items); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if next != tt.wantNext {
				t.Errorf("next = %q, want %q", next, tt.wantNext)
			}
		})
	}
}

func TestReadPassesTheFetchError(t *testing.T) {
	boom := errors.New("boom")
	items, next, err := paging.Read(2, func(int) ([]row, error) { return nil, boom }, func(r row) int { return r.ID })
	if !errors.Is(err, boom) || items != nil || next != 0 {
		t.Errorf("Read = %v, %v, %v; want nil, 0, boom", items, next, err)
	}
}

func TestReadRefusesAnEmptyPage(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Read with limit 0 did not panic")
		}
	}()
	_, _, _ = paging.Read(0, func(int) ([]row, error) { return nil, nil }, func(r row) int { return r.ID })
}
