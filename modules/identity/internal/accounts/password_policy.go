package accounts

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agora-commerce/agora/modules/identity"
)

// The password policy follows NIST SP 800-63B (section 3.1.1.2, "Password
// Verifiers"): a length from identity.MinPasswordLen to identity.MaxPasswordLen,
// every printing character allowed (spaces and letters of any script), no
// composition rules, and a check against values known to be common or easy to
// guess: a blocklist of breached passwords, repetitive or sequential characters,
// and words from the context (the service's name, the account's email).

// serviceName is the context word every password is checked against.
const serviceName = "agora"

// minContextWordLen is the shortest context word checked: shorter ones (an
// email's local part "jo", say) would refuse good passwords that happen to
// contain them.
const minContextWordLen = 3

// validatePassword checks a new password against the policy and returns an
// identity.ErrInvalidInput on field whose message says which rule the password
// breaks. No message contains the password, nor an example that could be it.
// The rules, in the order checked:
//   - it is valid UTF-8 and has no control characters (C0, U+007F and C1, as
//     unicode.IsControl: NUL, tab, newline…);
//   - it has MinPasswordLen to MaxPasswordLen characters, counted as Unicode code
//     points (runes), not bytes;
//   - it is not a short run of characters repeated (isRepetitive) nor a run of
//     consecutive characters (isSequential);
//   - it is not on the blocklist of common and breached passwords, whatever its
//     case (blocklisted);
//   - it is not made of context words with only digits, symbols or spaces around
//     them (builtFrom). The words are "agora" and those in context, such as the
//     account's email address; an email's local part, and each word of it, count
//     too.
//
// The password is checked as given, not trimmed or normalized: it is stored so.
func validatePassword(field, password string, context ...string) error {
	if !utf8.ValidString(password) {
		return invalid(field, "%s must be valid UTF-8", field)
	}
	if strings.ContainsFunc(password, unicode.IsControl) {
		return invalid(field, "%s must not contain control characters such as NUL, tab or newline", field)
	}
	if n := utf8.RuneCountInString(password); n < identity.MinPasswordLen || n > identity.MaxPasswordLen {
		return invalid(field, "%s must be %d to %d characters", field, identity.MinPasswordLen, identity.MaxPasswordLen)
	}
	lower := []rune(strings.ToLower(password))
	if isRepetitive(lower) {
		return invalid(field, "%s must not be one character or a short group of characters repeated", field)
	}
	if isSequential(lower) {
		return invalid(field, "%s must not be consecutive characters, in alphabet or digit order, up or down", field)
	}
	if blocklisted(password) {
		return invalid(field, "%s is too common: it is on a list of often used and breached passwords", field)
	}
	if builtFrom(password, contextWords(context)) {
		return invalid(field, "%s must not be made of the service's name or your email address", field)
	}
	return nil
}

// isRepetitive reports whether s is one short run of characters repeated: it has
// a period p (every rune equals the one p before it) of at most half its length
// and less than MinPasswordLen, as "aaaaaaaaaa", "abcabcabca" and "qwertyqwerty"
// have. The run alone would be refused as too short; repeating it adds next to
// nothing for a guesser.
func isRepetitive(s []rune) bool {
	for p := 1; p <= len(s)/2 && p < identity.MinPasswordLen; p++ {
		if hasPeriod(s, p) {
			return true
		}
	}
	return false
}

func hasPeriod(s []rune, p int) bool {
	for i := p; i < len(s); i++ {
		if s[i] != s[i-p] {
			return false
		}
	}
	return true
}

// isSequential reports whether every rune of s is the one after the one before
// it, or every rune the one before: "abcdefghij", "0123456789", "9876543210",
// "ΑΒΓΔΕΖΗΘΙΚ". Digits wrap around ("5678901234", "3210987654"); nothing else does.
func isSequential(s []rune) bool {
	if len(s) < 2 {
		return false
	}
	up, down := true, true
	for i := 1; i < len(s) && (up || down); i++ {
		up = up && follows(s[i-1], s[i])
		down = down && follows(s[i], s[i-1])
	}
	return up || down
}

// follows reports whether b comes right after a: the next code point, or '0'
// after '9'.
func follows(a, b rune) bool {
	return b == a+1 || (a == '9' && b == '0')
}

// contextWords returns the words a password must not be built from: the
// service's name, each of context, and for each that is an email address its
// local part and the words of it ("alice.smith" gives "alice" and "smith").
// Words shorter than minContextWordLen are left out.
func contextWords(context []string) []string {
	words := []string{serviceName}
	for _, c := range context {
		words = append(words, c)
		local, _, ok := strings.Cut(c, "@")
		if !ok {
			continue
		}
		words = append(words, local)
		words = append(words, strings.FieldsFunc(local, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})...)
	}
	kept := words[:0]
	for _, w := range words {
		if utf8.RuneCountInString(w) >= minContextWordLen {
			kept = append(kept, strings.ToLower(w))
		}
	}
	// Longest first, so that a word inside another ("agora" in "agora.fan") is
	// not taken out of the longer one before the longer one is looked for.
	slices.SortStableFunc(kept, func(a, b string) int { return len(b) - len(a) })
	return kept
}

// builtFrom reports whether password, ignoring case, contains at least one of
// words and, with every one of them taken out, has no letter left: "Agora2024!",
// "alice.smith@example.com" or "smith-1987-alice" for alice.smith@example.com.
// Words are taken out in their order (contextWords puts the longest first).
func builtFrom(password string, words []string) bool {
	p := strings.ToLower(password)
	found := false
	for _, w := range words {
		if strings.Contains(p, w) {
			found = true
			p = strings.ReplaceAll(p, w, "")
		}
	}
	return found && !strings.ContainsFunc(p, unicode.IsLetter)
}
