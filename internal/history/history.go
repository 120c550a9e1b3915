// Package history keeps bounded histories, such as a saga's steps: the first entry,
// which says how it all began, and the most recent ones, which say where it is.
package history

import "slices"

// Append returns h with e appended, keeping at most max entries (max >= 2): the
// first one and the max-1 most recent. It never modifies h: the result is a new
// slice, so a history read from a stored record may be appended to and the
// record left as it was.
func Append[T any](h []T, e T, max int) []T {
	out := append(slices.Clone(h), e)
	if len(out) > max {
		out = append(out[:1:1], out[len(out)-(max-1):]...)
	}
	return out
}
