// Package validate holds the checks of request fields that several modules make
// alike, so that a field means the same wherever it is checked: free text that is
// printable and bounded, tokens and keys made of printable characters.
package validate

import (
	"unicode"
	"unicode/utf8"

	"github.com/agora-commerce/agora/internal/message"
)

// Printable reports whether s is valid UTF-8 made of printable characters only
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII
// space; no control characters, no other spaces). The empty string is printable.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Text checks optional free text (a reason, a note): at most max characters, all
// printable. It returns nil, or invalid (the module's invalid-input error) saying
// so, on field.
func Text(invalid *message.Error, field, s string, max int) error {
	if utf8.RuneCountInString(s) > max || !Printable(s) {
		return invalid.Withf("at most %d printable characters", max).OnField(field)
	}
	return nil
}
