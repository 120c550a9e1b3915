package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/tools/internal/contracts"
)

// A payload's versions as a contract might write them.
type (
	line struct {
		SKU      string `json:"sku"`
		Quantity int64  `json:"quantity"`
	}
	v1 struct {
		OrderID string `json:"order_id"`
		Lines   []line `json:"lines"`
		Note    string `json:"note,omitempty"`
	}
	addedOptional struct {
		OrderID string  `json:"order_id"`
		Lines   []line  `json:"lines"`
		Note    string  `json:"note,omitempty"`
		Coupon  *coupon `json:"coupon,omitempty"` // new, optional, with required fields inside
	}
	coupon struct {
		Code string `json:"code"`
	}
	addedRequired struct {
		OrderID string `json:"order_id"`
		Lines   []line `json:"lines"`
		Note    string `json:"note,omitempty"`
		Rush    bool   `json:"rush"`
	}
	renamed struct {
		PayableID string `json:"payable_id"`
		Lines     []line `json:"lines"`
		Note      string `json:"note,omitempty"`
	}
	retypedDeep struct {
		OrderID string      `json:"order_id"`
		Lines   []lineFloat `json:"lines"`
		Note    string      `json:"note,omitempty"`
	}
	lineFloat struct {
		SKU      string  `json:"sku"`
		Quantity float64 `json:"quantity"`
	}
	madeOptional struct {
		OrderID string `json:"order_id,omitempty"`
		Lines   []line `json:"lines"`
		Note    string `json:"note,omitempty"`
	}
)

func shapeFor(t reflect.Type) shape {
	s := newSchemas()
	return s.shapeOf(s.reg.Schema(t, true, "T"))
}

// breaks finds every change the ADR calls breaking, and nothing else.
func TestBreaks(t *testing.T) {
	prev := shapeFor(reflect.TypeFor[v1]())
	for _, tc := range []struct {
		name string
		next reflect.Type
		want []string
	}{
		{"unchanged", reflect.TypeFor[v1](), nil},
		{"an optional field added, with required fields inside", reflect.TypeFor[addedOptional](), nil},
		{"a field always sent added", reflect.TypeFor[addedRequired](), []string{"rush: added, always sent (receivers of the previous version do not have it)"}},
		{"a field renamed", reflect.TypeFor[renamed](), []string{"order_id: removed", "payable_id: added, always sent (receivers of the previous version do not have it)"}},
		{"a nested field retyped", reflect.TypeFor[retypedDeep](), []string{"lines[].quantity: retyped from integer(int64) to number(double)"}},
		{"a field made optional", reflect.TypeFor[madeOptional](), []string{"order_id: no longer always sent"}},
	} {
		got := breaks(prev, shapeFor(tc.next))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if got := breaks(shapeFor(reflect.TypeFor[madeOptional]()), prev); len(got) != 1 || got[0] != "order_id: now required" {
		t.Errorf("a field made required: %v", got)
	}
}

// update refuses a breaking change within a version, accepts it at the next
// version (keeping the previous one), records a compatible change in place, and
// refuses a version below one released.
func TestLockUpdate(t *testing.T) {
	decl := func(v int, typ reflect.Type) []msg {
		return []msg{{Decl: &contracts.Decl{Name: "test.Placed", Owner: "test", File: "modules/test/test.go"},
			Declaration: message.Declaration{Name: "test.Placed", Kind: message.KindEvent, Version: v, Payload: typ}}}
	}
	update := func(l lockFile, msgs []msg) (lockFile, error) {
		s := newSchemas()
		for _, m := range msgs {
			s.describe(m)
		}
		return l.update(msgs, s)
	}
	l, err := update(lockFile{}, decl(1, reflect.TypeFor[v1]()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := update(l, decl(1, reflect.TypeFor[renamed]())); err == nil || !strings.Contains(err.Error(), "order_id: removed") ||
		!strings.Contains(err.Error(), ".AtVersion(2)") {
		t.Errorf("a rename within version 1: %v", err)
	}
	compatible, err := update(l, decl(1, reflect.TypeFor[addedOptional]()))
	if err != nil {
		t.Fatalf("an optional field added: %v", err)
	}
	if _, ok := compatible["test.Placed"]["1"].Payload["coupon"]; !ok {
		t.Errorf("the compatible change was not recorded: %v", compatible)
	}
	bumped, err := update(compatible, decl(2, reflect.TypeFor[renamed]()))
	if err != nil {
		t.Fatalf("a rename at version 2: %v", err)
	}
	if len(bumped["test.Placed"]) != 2 {
		t.Errorf("want versions 1 and 2 kept, got %v", bumped["test.Placed"])
	}
	if _, err := update(bumped, decl(1, reflect.TypeFor[v1]())); err == nil || !strings.Contains(err.Error(), "version 2 was released") {
		t.Errorf("back to version 1 after 2: %v", err)
	}
}
