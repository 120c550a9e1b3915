package message

import (
	"cmp"
	"reflect"
	"slices"
	"sync"
)

// Declaration is what a message's declaration says about it, for the tools that
// describe the bus (tools/asyncapigen): its name, kind, version and the Go types
// of its payload and, for a request, its reply.
type Declaration struct {
	Name    string
	Kind    Kind
	Version int  // 1 unless declared AtVersion
	Parked  bool // requests only
	// RenamedFrom and RenamedTo are the payload field the declaration says was
	// renamed (Renamed), or empty.
	RenamedFrom, RenamedTo string
	Payload                reflect.Type
	Reply                  reflect.Type // nil unless Kind is KindRequest
}

// declared holds the last Declaration made under each name. A contract's
// declarations are made once, when its package is initialised; requests that
// are built on demand (the platform's ops requests) overwrite their own entry, so
// the map stays as small as the set of names.
var declared sync.Map // name → Declaration

func declare(d Declaration) { declared.Store(d.Name, d) }

// Declarations returns every message declared so far in this program, one per
// name (the last declaration made under it), sorted by name. A program that
// imports every contract sees every contract's messages.
func Declarations() []Declaration {
	var out []Declaration
	declared.Range(func(_, v any) bool {
		out = append(out, v.(Declaration))
		return true
	})
	slices.SortFunc(out, func(a, b Declaration) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
