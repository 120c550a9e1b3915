package message_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/agora-commerce/agora/internal/message"
)

// sqlState is an error with a SQLSTATE, as PostgreSQL drivers' errors have.
type sqlState string

func (s sqlState) Error() string    { return "pg: " + string(s) }
func (s sqlState) SQLState() string { return string(s) }

// A handler's failure to reach its database (or any dependency over the network)
// reaches the caller as ErrDependencyDown, a 503 to retry; other failures stay
// internal.
func TestAsErrorTellsADependencyDownFromABug(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want *message.Error
	}{
		{"connection refused", fmt.Errorf("orders: begin: %w", refused), message.ErrDependencyDown},
		{"broken connection", fmt.Errorf("query: %w", driver.ErrBadConn), message.ErrDependencyDown},
		{"server shutting down", fmt.Errorf("query: %w", sqlState("57P01")), message.ErrDependencyDown},
		{"server starting", sqlState("57P03"), message.ErrDependencyDown},
		{"connection failure", sqlState("08006"), message.ErrDependencyDown},
		{"unique violation", sqlState("23505"), message.ErrInternal},
		{"a bug", errors.New("nil map"), message.ErrInternal},
		{"declared error wins", fmt.Errorf("%w: %w", message.ErrOverloaded, refused), message.ErrOverloaded},
	} {
		if got := message.AsError(tc.err); got != tc.want {
			t.Errorf("%s: AsError(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
