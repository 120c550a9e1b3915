package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// CountBy counts the rows of table by the values of column (a text column), as a
// gauge by state wants them: each value present and its count; values with no
// rows are absent. table and column are the caller's identifiers, never input.
func CountBy(ctx context.Context, q sqlx.QueryerContext, table, column string) (map[string]int64, error) {
	var rows []struct {
		Value string `db:"value"`
		N     int64  `db:"n"`
	}
	query := fmt.Sprintf(`SELECT %[2]s AS value, COUNT(*) AS n FROM %[1]s GROUP BY %[2]s`, table, column)
	if err := sqlx.SelectContext(ctx, q, &rows, query); err != nil {
		return nil, fmt.Errorf("%s: count by %s: %w", table, column, err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Value] = r.N
	}
	return out, nil
}
