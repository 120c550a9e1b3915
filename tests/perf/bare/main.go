// Command bare is the baseline of the performance check in tests/perf/run.sh: a
// plain net/http server that answers GET /v1/products/{id} with fixed bytes (a
// product's JSON fetched from agora), with no huma, middleware, bus or database.
// Agora's requests/s on the same route is compared with this server's, in the same
// run and with the same wrk settings, to see what the whole stack costs over what
// net/http alone costs on this machine.
//
//	go run ./tests/perf/bare -addr 127.0.0.1:18081 -body product.json
//
// It uses the standard library only and is not part of the product.
package main

import (
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "address to listen on")
	bodyFile := flag.String("body", "", "file whose exact bytes are the response body (Content-Type application/json)")
	flag.Parse()
	if *bodyFile == "" {
		log.Fatal("bare: -body is required")
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		log.Fatalf("bare: %v", err)
	}
	length := strconv.Itoa(len(body))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", length)
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("bare: %v", err)
	}
}
