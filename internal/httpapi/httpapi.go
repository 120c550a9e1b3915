// Package httpapi is Agora's HTTP edge: the huma API that every module registers its
// routes on, RFC 9457 problem+json for every error, the middleware that bounds and
// labels each request (request ids, body and concurrency limits, deadlines, access
// logs), the access rules that operations declare, and /healthz and /readyz.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// Config tunes the HTTP edge.
type Config struct {
	Addr           string
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	MaxInFlight    int
	Verifier       Verifier // checks access tokens; nil refuses every token
	Observer       Observer // sees every request (metrics, tracing); may be nil
}

// Routes registers a module's operations on the API. Modules provide one to the fx
// value group "http.routes".
type Routes func(api huma.API)

// API is the HTTP API of one process: the huma API, the mux it is served from, and
// the handler chain in front of them.
type API struct {
	huma.API
	mux     *http.ServeMux
	handler http.Handler
}

// NewAPI builds the API: huma on a net/http ServeMux, the OpenAPI document at
// /openapi.json and /openapi.yaml, the edge rate limits (RateLimited) and access
// rules as middleware, bounds on what every problem answer echoes (boundProblems),
// and the catch-all that answers unknown paths with problem+json. Register routes on
// it, then serve Handler.
func NewAPI(cfg Config, log *slog.Logger) *API {
	mux := http.NewServeMux()
	hc := huma.DefaultConfig("Agora", APIVersion)
	hc.DocsPath = ""     // served by package apidocs, from embedded assets
	hc.CreateHooks = nil // no $schema links in bodies: clients get exactly the documented fields
	configureDocument(&hc)
	if cfg.MaxBodyBytes > 0 {
		// huma refuses a body of its operation's MaxBodyBytes or more (413); make
		// that the configured limit for every operation, so bodies up to and
		// including MaxBodyBytes are read.
		hc.OnAddOperation = append(hc.OnAddOperation, func(_ *huma.OpenAPI, op *huma.Operation) {
			op.MaxBodyBytes = cfg.MaxBodyBytes + 1
		})
	}
	hc.Transformers = append(hc.Transformers, boundProblems)
	api := humago.New(mux, hc)
	describeProblem(api.OpenAPI())
	// Rate limits first: a refused request costs no token check and no body work.
	api.UseMiddleware(edgeLimits(api), accessRules(api, cfg.Verifier))
	a := &API{API: api, mux: mux}
	mux.HandleFunc("/", a.notFound)
	a.handler = chain(mux, log, cfg)
	return a
}

// Handler returns the API with its middleware.
func (a *API) Handler() http.Handler { return a.handler }

// Mux returns the mux, for handlers that are not huma operations (the docs page).
func (a *API) Mux() *http.ServeMux { return a.mux }

// notFound answers every request no route matched: 405 with Allow when the path
// exists for other methods, else 404, both as problem+json.
func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		for _, m := range allow {
			w.Header().Add("Allow", m)
		}
		WriteProblem(w, http.StatusMethodNotAllowed, missDetail(r.Method, r.URL.Path, http.StatusMethodNotAllowed))
		return
	}
	WriteProblem(w, http.StatusNotFound, missDetail(r.Method, r.URL.Path, http.StatusNotFound))
}

// Server serves an API until stopped.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// NewServer returns a server for api on cfg.Addr.
func NewServer(cfg Config, api *API, log *slog.Logger) *Server {
	return &Server{log: log, srv: &http.Server{
		Addr:              cfg.Addr,
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       cfg.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// Start listens and serves in a goroutine; it returns once the port is bound, or
// the error that prevented it.
func (s *Server) Start() error {
	ln, err := Listen(s.srv.Addr)
	if err != nil {
		return err
	}
	return s.StartOn(ln)
}

// Listen binds addr for a server, before it starts (StartOn).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// StartOn serves on ln, bound already, in a goroutine.
func (s *Server) StartOn(ln net.Listener) error {
	s.ln = ln
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.srv.Addr
	}
	return s.ln.Addr().String()
}

// Stop stops accepting connections and waits, up to ctx's deadline, for requests in
// flight to finish.
func (s *Server) Stop(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
