package accounts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/modules/identity"
)

// The words each rule's message carries, so a test can tell which rule refused.
const (
	ruleUTF8       = "valid UTF-8"
	ruleControl    = "control characters"
	ruleLength     = "to 128 characters"
	ruleRepetitive = "repeated"
	ruleSequential = "consecutive characters"
	ruleBlocklist  = "too common"
	ruleContext    = "the service's name or your email"
)

type policyCase struct {
	name, password string
	email          string // the context word given, if any
	rule           string // the rule that refuses it; empty: accepted
}

// checkPolicy runs validatePassword on each case and checks that it refuses
// with the named rule's message, as ErrInvalidInput on the field, without the
// password in the message, or accepts.
func checkPolicy(t *testing.T, cases []policyCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			var context []string
			if tt.email != "" {
				context = []string{tt.email}
			}
			err := validatePassword("new_password", tt.password, context...)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var be *message.Error
			if !errors.As(err, &be) || !errors.Is(err, identity.ErrInvalidInput) || be.Kind != message.Invalid {
				t.Fatalf("err = %v, want an ErrInvalidInput for the rule %q", err, tt.rule)
			}
			if be.Field != "new_password" {
				t.Errorf("field = %q, want new_password", be.Field)
			}
			if !strings.Contains(be.Message, tt.rule) || !strings.HasPrefix(be.Message, "new_password ") {
				t.Errorf("message %q does not name the field and the rule %q", be.Message, tt.rule)
			}
			if tt.password != "" && (strings.Contains(err.Error(), tt.password) ||
				strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.password))) {
				t.Errorf("the error %q contains the password", err)
			}
		})
	}
}

func TestPasswordPolicyAccepts(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "a passphrase with spaces", password: "correct horse battery staple"},
		{name: "spaces and symbols", password: "  ¡!  \u00a0 ☃ \u3000 "},
		{name: "letters of other scripts", password: "пароль надёжный"},
		{name: "ideographs, counted as characters", password: "我的密码很长也很安全的"},
		{name: "exactly 10 characters", password: "Tr0ub4dor&"},
		{name: "10 multi-byte characters", password: "ÄÖÜäöüßéèê"},
		{name: "exactly 128 characters", password: strings.Repeat("p", identity.MaxPasswordLen-1) + "q"},
		{name: "a run repeated once, longer than the minimum", password: "hunter2-but-longerhunter2-but-longer"},
		{name: "nearly repetitive", password: "aaaaaaaaab"},
		{name: "nearly sequential", password: "abcdefghik"},
		{name: "sequential in part", password: "abcdefghij and more"},
		{name: "the service's name among other words", password: "agora is my favourite shop"},
		{name: "the email's local part among other words", password: "alice in wonderland", email: "alice@example.com"},
		{name: "a context word too short to count", password: "jo-1234-5678-90", email: "jo@example.com"},
		{name: "the demo admin's", password: "demo-admin-password", email: "admin@example.com"},
		{name: "the demo customer's", password: "demo-customer-password", email: "customer@example.com"},
		{name: "an email-based password when no email is given", password: "alice.smith1990"},
	})
}

func TestPasswordPolicyEncodingAndControlCharacters(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "invalid byte", password: "0123456789\xff", rule: ruleUTF8},
		{name: "truncated sequence", password: "long enough \xc3", rule: ruleUTF8},
		{name: "encoded surrogate", password: "long enough \xed\xa0\x80", rule: ruleUTF8},
		{name: "NUL", password: "long enough\x00password", rule: ruleControl},
		{name: "NUL alone", password: "\x00", rule: ruleControl},
		{name: "tab", password: "long\tenough password", rule: ruleControl},
		{name: "newline at the end", password: "long enough password\n", rule: ruleControl},
		{name: "carriage return", password: "long enough\rpassword", rule: ruleControl},
		{name: "escape", password: "long enough\x1b[31m password", rule: ruleControl},
		{name: "DEL", password: "long enough\x7fpassword", rule: ruleControl},
		{name: "C1 next line", password: "long enough\u0085password", rule: ruleControl},
		{name: "C1 control sequence introducer", password: "long enough\u009bpassword", rule: ruleControl},
	})
}

func TestPasswordPolicyLength(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "empty", password: "", rule: ruleLength},
		{name: "9 characters", password: "Tr0ub4dor", rule: ruleLength},
		{name: "9 multi-byte characters in 18 bytes", password: "ÄÖÜäöüßéè", rule: ruleLength},
		{name: "9 ideographs in 27 bytes", password: "我的密码很长也很安", rule: ruleLength},
		{name: "129 characters", password: strings.Repeat("p", identity.MaxPasswordLen) + "q", rule: ruleLength},
		{name: "128 multi-byte characters", password: strings.Repeat("é", identity.MaxPasswordLen-1) + "q", rule: ""},
	})
}

func TestPasswordPolicyRepetitive(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "one character", password: "aaaaaaaaaa", rule: ruleRepetitive},
		{name: "one character in either case", password: "AAAAAaaaaa", rule: ruleRepetitive},
		{name: "one multi-byte character", password: strings.Repeat("é", 12), rule: ruleRepetitive},
		{name: "one symbol", password: "!!!!!!!!!!!!", rule: ruleRepetitive},
		{name: "spaces", password: strings.Repeat(" ", 16), rule: ruleRepetitive},
		{name: "128 of one character", password: strings.Repeat("p", identity.MaxPasswordLen), rule: ruleRepetitive},
		{name: "two characters", password: "abababababab", rule: ruleRepetitive},
		{name: "three characters, cut short", password: "abcabcabca", rule: ruleRepetitive},
		{name: "five characters twice", password: "1234512345", rule: ruleRepetitive},
		{name: "nine characters twice", password: "password1password1", rule: ruleRepetitive},
	})
}

func TestPasswordPolicySequential(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "letters up", password: "abcdefghij", rule: ruleSequential},
		{name: "letters up in capitals", password: "ABCDEFGHIJKLMN", rule: ruleSequential},
		{name: "letters down", password: "zyxwvutsrq", rule: ruleSequential},
		{name: "digits up", password: "0123456789", rule: ruleSequential},
		{name: "digits down", password: "9876543210", rule: ruleSequential},
		{name: "digits wrapping up", password: "5678901234", rule: ruleSequential},
		{name: "digits wrapping down", password: "3210987654", rule: ruleSequential},
		{name: "Greek letters", password: "ΑΒΓΔΕΖΗΘΙΚ", rule: ruleSequential},
	})
}

func TestPasswordPolicyBlocklist(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "keyboard row", password: "qwertyuiop", rule: ruleBlocklist},
		{name: "keyboard row in mixed case", password: "QwErTyUiOp", rule: ruleBlocklist},
		{name: "word and digits", password: "password123", rule: ruleBlocklist},
		{name: "keyboard columns", password: "1qaz2wsx3edc", rule: ruleBlocklist},
		{name: "dictionary word", password: "Basketball", rule: ruleBlocklist},
		{name: "digits with a letter", password: "123456789a", rule: ruleBlocklist},
	})
}

func TestPasswordPolicyContextWords(t *testing.T) {
	checkPolicy(t, []policyCase{
		{name: "the service's name and digits", password: "agora12345", rule: ruleContext},
		{name: "the service's name in capitals and symbols", password: "AGORA-2024!", rule: ruleContext},
		{name: "the email", password: "alice.smith@example.com", email: "alice.smith@example.com", rule: ruleContext},
		{name: "the email's local part and digits", password: "alice.smith1990", email: "alice.smith@example.com", rule: ruleContext},
		{name: "the local part's words, reordered", password: "Smith-1987-Alice", email: "alice.smith@example.com", rule: ruleContext},
		{name: "one word of the local part", password: "smith 12345678", email: "alice.smith@example.com", rule: ruleContext},
		{name: "a local part containing the service's name", password: "agora.fan 2024", email: "agora.fan@example.com", rule: ruleContext},
	})
}

// Every entry of the embedded list is refused, and the list is as the README
// says: lower-case, sorted, no duplicates, none shorter than the length rule
// allows, and not cut short.
func TestBlocklistData(t *testing.T) {
	lines := strings.Split(strings.TrimSuffix(blocklistText, "\n"), "\n")
	if len(lines) < 1500 {
		t.Fatalf("the blocklist has %d entries, want the 1,557 the README describes", len(lines))
	}
	if !slices.IsSorted(lines) {
		t.Error("the blocklist is not sorted")
	}
	for i, l := range lines {
		if i > 0 && l == lines[i-1] {
			t.Errorf("line %d: %q is listed twice", i+1, l)
		}
		if l != strings.ToLower(l) || utf8.RuneCountInString(l) < identity.MinPasswordLen || !utf8.ValidString(l) {
			t.Errorf("line %d: %q is not a lower-case entry of at least %d characters", i+1, l, identity.MinPasswordLen)
		}
		if validatePassword("password", l) == nil || validatePassword("password", strings.ToUpper(l)) == nil {
			t.Errorf("line %d: %q is accepted", i+1, l)
		}
	}
}
