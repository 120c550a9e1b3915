package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestLoadgenRejectsBadSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--tokens", "tok_visa=0"}, want: "weight must be a positive integer"},
		{env: map[string]string{"AGORA_LOADGEN_TOKENS": "tok_visa=1,tok_visa=2"}, want: "appears twice"},
		{args: []string{"--await", "websocket"}, want: "await must be"},
		{args: []string{"--browse-rate", "lots"}, want: "browse rate"},
		{args: []string{"--restock", "5"}, want: "BELOW:AMOUNT"},
		{args: []string{"--url", "localhost:8080"}, want: "want http(s)://host:port"},
		{args: []string{"--rate", "0"}, want: "rate must be positive"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := run(t, append([]string{"loadgen"}, tc.args...)...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("loadgen %v %v: exit %d, stderr %q; want 1 and %q", tc.args, tc.env, code, errOut, tc.want)
			}
		})
	}
}

// The command reaches the API at every --url, comma lists included, and a warm-up
// that finds nothing to buy fails the command.
func TestLoadgenWarmUpNeedsProducts(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	api := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[name]++
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/v1/auth/login":
				w.Write([]byte(`{"access_token":"a","refresh_token":"r","expires_in":900}`))
			case "/v1/products":
				w.Write([]byte(`{"items":[]}`))
			default:
				http.NotFound(w, r)
			}
		}))
	}
	a, b := api("a"), api("b")
	defer a.Close()
	defer b.Close()
	code, _, errOut := run(t, "loadgen", "--url", a.URL+","+b.URL, "--customers", "1", "--restock", "off")
	if code != 1 || !strings.Contains(errOut, "no active product") {
		t.Errorf("exit %d, stderr %q; want 1 and no active product", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits["a"] == 0 || hits["b"] == 0 {
		t.Errorf("requests per server %v: want both used", hits)
	}
}
