package message

import (
	"database/sql/driver"
	"errors"
	"net"
	"strings"
)

// ErrDependencyDown: something the handler needs besides the bus — its database,
// most often, while it restarts — could not be reached. Nothing was done; retry
// shortly. AsError gives it for such failures instead of ErrInternal, so that a
// database restart reaches clients as a 503 with Retry-After, not a 500.
var ErrDependencyDown = NewError(Unavailable, "service.dependency_down", "a service this request needs is unreachable; retry shortly")

// dependencyDown reports whether err says a connection to a dependency failed or
// was refused: a network error (dialing, or a connection that broke), a database
// driver's broken connection, or PostgreSQL's SQLSTATE of a lost connection
// (class 08) or of a server shutting down or starting (57P01–57P03). It reads
// interfaces only, so this package keeps to the standard library.
func dependencyDown(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		code := st.SQLState()
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	return false
}
