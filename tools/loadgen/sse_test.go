package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSSEReader(t *testing.T) {
	stream := ": a comment, as a keep-alive\n" +
		"retry: 1000\n" +
		"id: 1\n" +
		"data: {\"a\":1}\n\n" +
		"event: order\r\n" +
		"id: 2\r\n" +
		"data: line one\r\n" +
		"data:line two\r\n" +
		"data\r\n" +
		"\r\n" +
		"event: ignored\n\n" + // no data: not dispatched, and its type does not leak
		"data: after\n\n" +
		"data: never ended" // cut off before its blank line: discarded
	// One byte at a time: every frame arrives in pieces.
	r := newSSEReader(iotest.OneByteReader(strings.NewReader(stream)))
	var got []event
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []event{
		{Type: "message", ID: "1", Data: `{"a":1}`},
		{Type: "order", ID: "2", Data: "line one\nline two\n"},
		{Type: "message", ID: "2", Data: "after"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// sseServer serves /v1/orders/{id}/events from a script of connections: each
// connection writes its frames, in pieces, then ends — or, with hold, stays open
// until the client goes away.
type sseServer struct {
	mu          sync.Mutex
	connections [][]string
	hold        []bool
	lastIDs     []string // Last-Event-ID of each connection
	auth        []string
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.lastIDs)
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	if r.URL.Path != "/v1/orders/o1/events" || n >= len(s.connections) {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	f := w.(http.Flusher)
	for _, frame := range s.connections[n] {
		// Split every frame so the client sees partial lines.
		half := len(frame) / 2
		for _, part := range []string{frame[:half], frame[half:]} {
			io.WriteString(w, part)
			f.Flush()
		}
	}
	if s.hold[n] {
		<-r.Context().Done()
	}
}

func orderFrame(id int, status string) string {
	return fmt.Sprintf("id: %d\nevent: order\ndata: {\"id\":\"o1\",\n"+
		"data: \"status\":%q,\"reason\":\"r%d\",\"version\":%d}\n\n", id, status, id, id)
}

func testGen(t *testing.T, url string) (*gen, *account) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URLs = []string{url}
	g := &gen{cfg: cfg, rec: newRecorder()}
	g.c = newClient(cfg, g.rec)
	cust := &account{email: "c@example.com", access: "tok-1", renewAt: time.Now().Add(time.Hour)}
	return g, cust
}

// The wait ends on the terminal event, though the server keeps the stream open.
func TestAwaitSSEEndsOnTheTerminalEvent(t *testing.T) {
	srv := &sseServer{
		connections: [][]string{{": hello\n\n", orderFrame(1, "pending"), orderFrame(2, "confirmed"), orderFrame(3, "cancelled")}},
		hold:        []bool{true},
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	g, cust := testGen(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := g.awaitSSE(ctx, cust, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(order{ID: "o1", Status: "confirmed", Reason: "r2", Version: 2}, o); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if srv.auth[0] != "Bearer tok-1" {
		t.Errorf("Authorization = %q", srv.auth[0])
	}
	if n := len(g.rec.opLatency["order_events"]); n != 1 || len(g.rec.errors) != 0 {
		t.Errorf("recorded %d streams and errors %v; want 1 and none", n, g.rec.errors)
	}
}

// A stream that ends before the order is terminal is opened again, from the last
// event id seen.
func TestAwaitSSEReconnects(t *testing.T) {
	srv := &sseServer{
		connections: [][]string{{orderFrame(1, "pending")}, {orderFrame(2, "pending"), orderFrame(3, "rejected")}},
		hold:        []bool{false, true},
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	g, cust := testGen(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := g.awaitSSE(ctx, cust, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != "rejected" || o.Reason != "r3" {
		t.Errorf("order = %+v, want rejected with reason r3", o)
	}
	if diff := cmp.Diff([]string{"", "1"}, srv.lastIDs); diff != "" {
		t.Errorf("Last-Event-ID per connection (-want +got):\n%s", diff)
	}
}

// A stream that is refused (404: no such order) ends the wait with the error,
// recorded once.
func TestAwaitSSEGivesUpOnAClientError(t *testing.T) {
	srv := &sseServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	g, cust := testGen(t, ts.URL)
	_, err := g.awaitSSE(context.Background(), cust, "nope")
	if statusOf(err) != http.StatusNotFound {
		t.Fatalf("err = %v, want a 404", err)
	}
	if e := g.rec.errors[errorKey{"order_events", "404"}]; e == nil || e.count != 1 {
		t.Errorf("errors = %v, want one order_events 404", g.rec.errors)
	}
}

// When the order does not end in time, the wait ends with the deadline.
func TestAwaitSSETimesOut(t *testing.T) {
	srv := &sseServer{connections: [][]string{{orderFrame(1, "pending")}}, hold: []bool{true}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	g, cust := testGen(t, ts.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := g.awaitSSE(ctx, cust, "o1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if len(g.rec.errors) != 0 {
		t.Errorf("a wait that ran out recorded errors %v", g.rec.errors)
	}
}
