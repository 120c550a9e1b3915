package app

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
)

// TestDebugListenerIsLoopbackOnly: --debug-addr serves Go's profiles on a loopback
// address and refuses any other (profiles show the code's internals).
func TestDebugListenerIsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060"} {
		if ln, err := listenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("debug-addr %q was accepted", addr)
		}
	}
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := fxtest.New(t, fx.Invoke(func(lc fx.Lifecycle) { serveDebug(lc, addr, slog.New(slog.DiscardHandler)) }))
	a.RequireStart()
	defer a.RequireStop()
	res, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/: %d %.200s", res.StatusCode, body)
	}
}
