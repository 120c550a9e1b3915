package accounts

import (
	_ "embed"
	"strings"
	"sync"
)

// blocklistText is the list of common and breached passwords that new passwords
// are checked against: lower-cased, one a line, byte-sorted, only those of at
// least identity.MinPasswordLen characters (shorter ones fail the length rule
// first). Where it comes from, its licence and how to rebuild it: blocklist/README.md.
//
//go:generate sh blocklist/generate.sh
//go:embed blocklist/passwords.txt
var blocklistText string

// blocklist is the set of blocklistText's lines, built on first use.
var blocklist = sync.OnceValue(func() map[string]struct{} {
	lines := strings.Split(strings.TrimSuffix(blocklistText, "\n"), "\n")
	set := make(map[string]struct{}, len(lines))
	for _, l := range lines {
		set[l] = struct{}{}
	}
	return set
})

// blocklisted reports whether password is on the blocklist, ignoring case.
func blocklisted(password string) bool {
	_, ok := blocklist()[strings.ToLower(password)]
	return ok
}
