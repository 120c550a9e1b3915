package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// BodyHash is the hash an idempotency key is bound to: the SHA-256, in hex, of a
// request body in canonical JSON (the body struct's encoding, whatever the client
// sent), so that a retry with the same key and an equal body answers the first
// request and one with another body is refused. A body decoded from JSON always
// encodes again; one that does not (a channel, a NaN) hashes as an empty body.
func BodyHash(body any) string {
	raw, _ := json.Marshal(body)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}
