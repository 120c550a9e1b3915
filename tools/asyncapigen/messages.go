package main

import (
	"fmt"
	"strings"

	"github.com/agora-commerce/agora/internal/message"
	"github.com/agora-commerce/agora/internal/modhost"
	"github.com/agora-commerce/agora/tools/internal/contracts"
)

// msg is one message on the bus: what its source says and what its compiled
// declaration says.
type msg struct {
	*contracts.Decl
	message.Declaration
	// Address is the NATS subject; a platform request's has a {module} parameter,
	// one of Modules.
	Address string
	Modules []string
}

// Name is the message's name (both halves carry it).
func (m msg) Name() string { return m.Decl.Name }

// Kind is the message's kind.
func (m msg) Kind() message.Kind { return m.Declaration.Kind }

// Short is the name's last part, e.g. PlaceOrder.
func (m msg) Short() string { return m.Decl.Name[strings.LastIndex(m.Decl.Name, ".")+1:] }

// join pairs each declaration in the source with its compiled declaration, in
// the source's order, then adds the platform's requests (see platform). Every
// message in the source must be compiled into this program (its contract in the
// registry); other compiled declarations (the platform's, made on demand under
// each module's name) are not taken from message.Declarations.
func join(m *contracts.Model, compiled []message.Declaration) ([]msg, error) {
	byName := map[string]message.Declaration{}
	for _, d := range compiled {
		byName[d.Name] = d
	}
	var out []msg
	var missing []string
	for _, d := range m.Decls {
		c, ok := byName[d.Name]
		if !ok {
			missing = append(missing, d.Name+" ("+d.File+")")
			continue
		}
		if string(c.Kind) != d.Kind {
			return nil, fmt.Errorf("%s: the source declares a %s, the compiled program a %s", d.Name, d.Kind, c.Kind)
		}
		out = append(out, msg{Decl: d, Declaration: c, Address: subject(c)})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("declared in a contract the registry does not compile in: %s", strings.Join(missing, ", "))
	}
	return append(out, platform(m)...), nil
}

// subject is where d travels over NATS (internal/natsbus).
func subject(d message.Declaration) string {
	if d.Kind == message.KindRequest {
		return requestPrefix + d.Name
	}
	return messagePrefix + d.Name
}

// platformOwner owns the requests every hosted module answers besides its contract's.
const platformOwner = "platform"

// platform returns the requests every hosted module answers besides its
// contract's (modhost.OpsDeclarations), one per request with the module as a
// parameter of its subject, named "ops.<Name>".
func platform(m *contracts.Model) []msg {
	var modules []string
	for _, mod := range m.Modules {
		if mod.Registered {
			modules = append(modules, mod.Name)
		}
	}
	var out []msg
	for _, d := range modhost.OpsDeclarations("{module}") {
		addr := subject(d)
		d.Name = strings.TrimPrefix(d.Name, "{module}.")
		out = append(out, msg{
			Decl: &contracts.Decl{Var: "OpsDeclarations", Name: d.Name, Kind: string(d.Kind), Owner: platformOwner, File: "internal/modhost/ops.go",
				Summary: "A request every hosted module answers on the bus for the platform's operator tools (" + d.Name + ")."},
			Declaration: d, Address: addr, Modules: modules,
		})
	}
	return out
}

// consumers returns the modules other than the owner whose code uses m: for a
// request its callers, for a command its senders, for an event its subscribers.
func (m msg) consumers() []string { return m.Users }
