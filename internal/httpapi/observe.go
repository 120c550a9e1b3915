package httpapi

import (
	"context"
	"net/http"
	"time"
)

// Observer watches every HTTP request the edge serves; metrics and tracing plug
// in here. Begin is called as a request arrives (before routing); the request is
// served under the context it returns, and end is called once it is answered,
// with the pattern of the route that matched ("GET /v1/products/{id}", "/" for
// no route), the status and the time it took. Implementations must be safe for
// concurrent use.
type Observer interface {
	Begin(ctx context.Context, r *http.Request) (_ context.Context, end func(route string, status int, took time.Duration))
}
