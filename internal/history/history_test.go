package history_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/history"
)

func TestAppend(t *testing.T) {
	tests := []struct {
		name string
		h    []int
		e    int
		max  int
		want []int
	}{
		{"empty", nil, 1, 3, []int{1}},
		{"below the bound", []int{1, 2}, 3, 3, []int{1, 2, 3}},
		{"at the bound: the first stays, the oldest after it goes", []int{1, 2, 3}, 4, 3, []int{1, 3, 4}},
		{"long past the bound", []int{1, 2, 3, 4, 5, 6}, 7, 4, []int{1, 5, 6, 7}},
		{"bound of two", []int{1, 2}, 3, 2, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := append([]int(nil), tt.h...)
			got := history.Append(tt.h, tt.e, tt.max)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Append (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.h); diff != "" {
				t.Errorf("Append modified its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAppendDoesNotShareTheArgumentsArray(t *testing.T) {
	h := make([]int, 2, 10) // room to append in place
	h[0], h[1] = 1, 2
	a := history.Append(h, 3, 5)
	b := history.Append(h, 4, 5)
	if a[2] != 3 || b[2] != 4 {
		t.Fatalf("two appends to one history share storage: %v, %v", a, b)
	}
}
