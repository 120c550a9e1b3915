package testdb

import (
	"encoding/json"
	"testing"

	"github.com/agora-commerce/agora/internal/store"
)

// OutboxRow is one message in a module's outbox, as tests look at it.
type OutboxRow struct {
	Type    string `db:"type"`
	Kind    string `db:"kind"`
	Payload string `db:"payload"`
}

// OutboxRows returns db's outbox in the order it was written (ids are UUIDv7).
func OutboxRows(t testing.TB, db *store.DB) []OutboxRow {
	t.Helper()
	var rows []OutboxRow
	if err := db.SelectContext(t.Context(), &rows, `SELECT type, kind, payload FROM outbox ORDER BY id`); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return rows
}

// OutboxTypes returns the message types of rows, in order.
func OutboxTypes(rows []OutboxRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Type
	}
	return out
}

// Decode decodes a JSON payload as T, failing the test if it cannot.
func Decode[T any](t testing.TB, payload string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(payload), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, payload, err)
	}
	return v
}
