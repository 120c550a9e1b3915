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

// Created is the answer of a POST that creates something once per Idempotency-Key
// (POST /v1/orders, POST /v1/rides): the new resource's Location and the resource,
// with Idempotent-Replayed: true when it answers an earlier request with the same
// key and body rather than creating anything (false when it created it).
type Created[T any] struct {
	Location string `header:"Location" required:"true" doc:"where the created resource is"`
	Replayed bool   `header:"Idempotent-Replayed" required:"true" doc:"true when this answers an earlier request with the same Idempotency-Key"`
	Body     T
}

// NewCreated returns the answer for body, found at location; replayed says that an
// earlier request made it.
func NewCreated[T any](location string, body T, replayed bool) *Created[T] {
	return &Created[T]{Location: location, Body: body, Replayed: replayed}
}
