package message_test

import (
	"reflect"
	"testing"

	"github.com/agora-commerce/agora/internal/message"
)

type paid struct {
	PayableID string `json:"payable_id"`
	Note      string `json:"note"`
}

// A message declared Renamed decodes payloads written under the old field name as
// well as current ones; a declaration without it does not.
func TestRenamedDecodesPayloadsWrittenBefore(t *testing.T) {
	renamedEvent := message.NewEvent[paid]("test.Paid").Renamed("order_id", "payable_id")
	renamedCommand := message.NewCommand[paid]("test.Pay").Renamed("order_id", "payable_id")
	plain := message.NewEvent[paid]("test.Paid")
	tests := []struct {
		name    string
		decode  func(message.Envelope) (message.Message[paid], error)
		payload string
		want    string
	}{
		{"event, old name", renamedEvent.Decode, `{"order_id":"o1","note":"x"}`, "o1"},
		{"event, new name", renamedEvent.Decode, `{"payable_id":"p1","note":"x"}`, "p1"},
		{"event, both names: the new one stands", renamedEvent.Decode, `{"order_id":"o1","payable_id":"p1"}`, "p1"},
		{"event, old name only in a value", renamedEvent.Decode, `{"payable_id":"p1","note":"\"order_id\""}`, "p1"},
		{"command, old name", renamedCommand.Decode, `{"order_id":"o1"}`, "o1"},
		{"not renamed, old name", plain.Decode, `{"order_id":"o1"}`, ""},
	}
	for _, tc := range tests {
		m, err := tc.decode(message.Envelope{Type: "test.Paid", Payload: []byte(tc.payload)})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m.Body.PayableID != tc.want {
			t.Errorf("%s: PayableID = %q, want %q", tc.name, m.Body.PayableID, tc.want)
		}
	}
	if _, err := renamedEvent.Decode(message.Envelope{Type: "test.Paid", Payload: []byte(`{"order_id":`)}); err == nil {
		t.Error("a broken payload decoded")
	}
}

// Declarations describes each name as its declaration ended up, options included,
// so that a tool sees the version and types the bus uses.
func TestDeclarationsRecordVersionsAndTypes(t *testing.T) {
	message.NewEvent[paid]("test.Declared").AtVersion(3).Renamed("order_id", "payable_id")
	message.NewRequest[paid, string]("test.Asked").Parked()
	got := map[string]message.Declaration{}
	for _, d := range message.Declarations() {
		got[d.Name] = d
	}
	ev, req := got["test.Declared"], got["test.Asked"]
	if ev.Kind != message.KindEvent || ev.Version != 3 || ev.RenamedFrom != "order_id" || ev.RenamedTo != "payable_id" ||
		ev.Payload != reflect.TypeFor[paid]() || ev.Reply != nil {
		t.Errorf("event declaration = %+v", ev)
	}
	if req.Kind != message.KindRequest || req.Version != 1 || !req.Parked || req.Reply != reflect.TypeFor[string]() {
		t.Errorf("request declaration = %+v", req)
	}
}
