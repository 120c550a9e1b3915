// Package paging serves keyset-paginated lists: it settles a page's size from the
// one asked for and reads one page, telling whether another follows and where it
// starts. The modules' List requests all page this way, so a cursor means the same
// everywhere: the key of the last item of the page, absent on the last page.
package paging

import "fmt"

// Limit returns the page size to serve for a requested one: def when none was
// asked for (requested <= 0), max when more than max was, requested otherwise.
func Limit(requested, def, max int) int {
	switch {
	case requested <= 0:
		return def
	case requested > max:
		return max
	}
	return requested
}

// Read reads one page of at most limit items, in the order fetch returns them. It
// asks fetch for limit+1 items: the extra one, never returned, only tells that
// another page follows. Then next is the cursor of the page's last item; on the
// last page it is the zero C. When fetch returns no more than limit items, Read
// returns its slice as it is (nil stays nil). limit must be at least 1.
func Read[T, C any](limit int, fetch func(n int) ([]T, error), cursor func(T) C) (items []T, next C, err error) {
	if limit < 1 {
		panic(fmt.Sprintf("paging: page size %d; it must be at least 1", limit))
	}
	items, err = fetch(limit + 1)
	if err != nil || len(items) <= limit {
		return items, next, err
	}
	items = items[:limit]
	return items, cursor(items[limit-1]), nil
}
