package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/testlog"
)

// A message one consumer gave up on is listed with that consumer and its last
// error, and a redrive sends it to that consumer only — the other consumer of its
// type, which had it, does not handle it again — and takes it off the list; a
// second redrive of it finds nothing. Against a real broker, through the HTTP
// operations.
func TestDeadLettersAreListedAndRedriven(t *testing.T) {
	br := startBroker(t, t.TempDir())
	bad, good := newRecorder(), newRecorder()
	receiver := startNode(t, br.URL(), Config{MaxDeliver: 3}, nil, []bus.Subscription{bad.sub("bad.listener"), good.sub("good.listener")})
	sender := startNode(t, br.URL(), Config{}, nil, nil)
	poison := envelope(t, "poison")
	bad.fail[poison.ID] = 3 // fails every delivery until it is dead; the redrive succeeds
	if err := sender.b.Deliver(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	_, api := humatest.New(t)
	Routes(sender.t)(api) // any process answers: here the one that published it

	var page BrokerDeadLetterPage
	testlog.Eventually(t, "the dead letter listed", func() bool {
		page = BrokerDeadLetterPage{}
		return getJSON(t, api, "/v1/ops/bus/dead-letters", &page) && len(page.Items) == 1
	})
	d := page.Items[0]
	if d.ID != poison.ID || d.Type != echoed.Name() || d.Consumer != "bad.listener" || !strings.Contains(d.Error, "failure 3") || d.Seq == 0 {
		t.Fatalf("dead letter %+v: want the poison's id and type, the consumer that gave up and its last error", d)
	}
	if res := api.Post(fmt.Sprintf("/v1/ops/bus/dead-letters/%d/redrive", d.Seq)); res.Code != http.StatusAccepted {
		t.Fatalf("redrive: %d %s", res.Code, res.Body)
	}
	testlog.Eventually(t, "the redriven message handled", func() bool { return bad.count(bad.handled, poison.ID) == 1 })
	testlog.Eventually(t, "nothing left to deliver", func() bool {
		return settled(t, receiver, "bad.listener") && settled(t, receiver, "good.listener")
	})
	if n := good.count(good.tries, poison.ID); n != 1 {
		t.Errorf("the consumer that had the message was handed it %d times: want 1 (a redrive is for the one that gave up)", n)
	}
	page = BrokerDeadLetterPage{}
	if !getJSON(t, api, "/v1/ops/bus/dead-letters", &page) || len(page.Items) != 0 {
		t.Errorf("after the redrive: %+v, want no dead letter", page.Items)
	}
	res := api.Post(fmt.Sprintf("/v1/ops/bus/dead-letters/%d/redrive", d.Seq))
	if res.Code != http.StatusNotFound || !strings.Contains(res.Body.String(), "bus.dead_letter_not_found") {
		t.Errorf("a second redrive: %d %s, want a 404 problem", res.Code, res.Body)
	}
	if err := sender.t.RedriveDeadLetter(context.Background(), d.Seq); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("RedriveDeadLetter of a redriven letter: %v, want ErrDeadLetterNotFound", err)
	}
}

// A process with the in-process bus has no broker: no dead letter, and a redrive
// finds none.
func TestDeadLetterRoutesWithoutABroker(t *testing.T) {
	_, api := humatest.New(t)
	Routes(nil)(api)
	var page BrokerDeadLetterPage
	if !getJSON(t, api, "/v1/ops/bus/dead-letters?limit=5", &page) || page.Items == nil || len(page.Items) != 0 {
		t.Errorf("list without a broker: %+v, want an empty list", page)
	}
	if res := api.Post("/v1/ops/bus/dead-letters/1/redrive"); res.Code != http.StatusNotFound {
		t.Errorf("redrive without a broker: %d %s, want 404", res.Code, res.Body)
	}
}

func getJSON(t *testing.T, api humatest.TestAPI, path string, v any) bool {
	t.Helper()
	res := api.Get(path)
	if res.Code != http.StatusOK {
		t.Logf("GET %s: %d %s", path, res.Code, res.Body)
		return false
	}
	if err := json.Unmarshal(res.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
	return true
}
