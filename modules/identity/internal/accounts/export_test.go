package accounts

// What the external tests (package accounts_test) need to see of the package.
var (
	NeedsRehash = needsRehash
	OtherHash   = otherHash
)

// HashCount returns how many password hashes have been computed so far.
func HashCount() int64 { return hashes.Load() }
