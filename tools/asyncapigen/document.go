package main

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/agora-commerce/agora/internal/message"
)

// The subjects messages travel on over NATS (internal/natsbus).
const (
	requestPrefix = "agora.req."
	messagePrefix = "agora.msg."
)

// asyncAPI is the document's top level, in the order it is written.
type asyncAPI struct {
	AsyncAPI           string         `yaml:"asyncapi"`
	Info               map[string]any `yaml:"info"`
	DefaultContentType string         `yaml:"defaultContentType"`
	Servers            map[string]any `yaml:"servers"`
	Channels           map[string]any `yaml:"channels"`
	Operations         map[string]any `yaml:"operations"`
	Components         map[string]any `yaml:"components"`
}

// docDescription introduces the document (Markdown; ^ stands for a backquote).
var docDescription = strings.ReplaceAll(`Every message Agora's modules exchange on the bus, drawn from the modules' contracts
(^modules/<module>/<module>.go^) by ^tools/asyncapigen^.

- **Requests** are NATS request–reply on ^agora.req.<name>^, served by the owning module's
  processes in the queue group ^agora.<module>^. The reply is the reply payload, or a
  ^message.Error^ when the ^Agora-Error^ header is set.
- **Commands** (to the owning module) and **events** (from it, to every subscriber) are durable:
  written to the sender's outbox with its state change, then published to the JetStream
  stream ^AGORA^ on ^agora.msg.<name>^; each receiving handler has a durable consumer and
  applies a message once (its inbox), however often it is delivered.

Each message names its owner (^x-agora-owner^), the modules that call, send or subscribe to it
(^x-agora-callers^, ^x-agora-senders^, ^x-agora-subscribers^), its declaration in the contract
(^x-agora-contract^) and its version (^x-agora-version^). Within a version a payload only gains
optional fields; anything a receiver of the previous version would misread takes the next version
and a period in which both are handled (^docs/adr/0013-message-versions.md^).
^api/message-versions.json^ keeps every released version's fields.`, "^", "`")

// document renders the AsyncAPI 3.0 document for msgs.
func document(msgs []msg, s *schemas) ([]byte, error) {
	d := asyncAPI{
		AsyncAPI: "3.0.0",
		Info: map[string]any{
			"title": "Agora messages", "version": "dev", "description": docDescription,
			"license": map[string]any{"name": "Proprietary"},
			"tags":    moduleTags(msgs),
		},
		DefaultContentType: "application/json",
		Servers: map[string]any{"broker": map[string]any{
			"host": "localhost:4222", "protocol": "nats",
			"description": "The NATS broker every process of a split deployment connects to (AGORA_BUS_URL; `agora broker` runs one). " +
				"In the single binary the same messages travel in-process.",
		}},
		Channels: map[string]any{}, Operations: map[string]any{},
	}
	messages := map[string]any{"message.Error": errorMessage(s)}
	for _, m := range msgs {
		addChannels(d.Channels, m)
		addOperations(d.Operations, m)
		payload, err := plain(s.of[m.Name()].payload)
		if err != nil {
			return nil, err
		}
		messages[m.Name()] = messageObject(m, m.Short(), m.Summary, payload)
		if r := s.of[m.Name()].reply; r != nil {
			reply, err := plain(r)
			if err != nil {
				return nil, err
			}
			messages[m.Name()+".reply"] = messageObject(m, m.Short()+"Reply", "The reply to "+m.Short()+".", reply)
		}
	}
	schemaMap := map[string]any{"AgoraHeaders": headersSchema}
	for name, sc := range s.reg.Map() {
		v, err := plain(sc)
		if err != nil {
			return nil, err
		}
		schemaMap[name] = v
	}
	d.Components = map[string]any{"messages": messages, "schemas": schemaMap}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// moduleTags are one tag per module, in the registry's order, which every
// operation of the module carries.
func moduleTags(msgs []msg) []any {
	var seen []string
	var tags []any
	for _, m := range msgs {
		if !slices.Contains(seen, m.Owner) {
			seen = append(seen, m.Owner)
			desc := "Operations of the " + m.Owner + " module."
			if m.Owner == platformOwner {
				desc = "Requests every hosted module answers for the platform's operator tools (internal/modhost)."
			}
			tags = append(tags, map[string]any{"name": m.Owner, "description": desc})
		}
	}
	return tags
}

// addChannels adds m's channel and, for a request, its reply's.
func addChannels(ch map[string]any, m msg) {
	own := map[string]any{m.Short(): ref("#/components/messages/" + m.Name())}
	if m.Kind() != message.KindRequest {
		ch[m.Name()] = map[string]any{"address": m.Address, "title": m.Name(),
			"description": fmt.Sprintf("The %s %s, on the stream AGORA.", m.Name(), m.Kind()), "messages": own}
		return
	}
	c := map[string]any{"address": m.Address, "title": m.Name(),
		"description": "Requests for " + m.Name() + ", served in the queue group agora." + m.Owner + ".", "messages": own}
	if m.Modules != nil {
		c["description"] = "Requests for " + m.Name() + " to one module, served in that module's queue group agora.{module}. " +
			"Every module answers ops.Process; a module with a database also answers the requests on its outbox."
		c["parameters"] = map[string]any{"module": map[string]any{"description": "the module asked", "enum": m.Modules}}
	}
	ch[m.Name()] = c
	ch[m.Name()+".reply"] = map[string]any{"address": nil, "title": m.Name() + " reply",
		"description": "The reply to " + m.Name() + ", on the inbox subject the caller's request named.",
		"messages": map[string]any{
			m.Short() + "Reply": ref("#/components/messages/" + m.Name() + ".reply"),
			"Error":             ref("#/components/messages/message.Error"),
		}}
}

// addOperations adds what each module does with m: the owner handles a request
// or command and sends an event; the others call, send or subscribe.
func addOperations(ops map[string]any, m msg) {
	ownerAction, otherAction := "receive", "send"
	if m.Kind() == message.KindEvent {
		ownerAction, otherAction = "send", "receive"
	}
	var handlers []string
	for _, h := range m.Handlers {
		handlers = append(handlers, h.Module+": "+h.Func)
	}
	ownerDesc := m.Owner + " publishes it."
	if m.Kind() != message.KindEvent && len(handlers) > 0 {
		ownerDesc = "Handled by " + strings.Join(handlers, ", ") + "."
	} else if m.Kind() != message.KindEvent {
		ownerDesc = "Every hosted module answers it (internal/modhost)."
	}
	ops[m.Owner+"."+ownerAction+"."+m.Name()] = operation(m, m.Owner, ownerAction, ownerDesc)
	for _, user := range m.consumers() {
		desc := user + " " + map[message.Kind]string{message.KindRequest: "calls it.", message.KindCommand: "sends it."}[m.Kind()]
		if m.Kind() == message.KindEvent {
			desc = "Handled by " + strings.Join(handlersIn(m, user), ", ") + "."
		}
		ops[user+"."+otherAction+"."+m.Name()] = operation(m, user, otherAction, desc)
	}
}

// handlersIn returns the functions of module that handle m.
func handlersIn(m msg, module string) []string {
	var out []string
	for _, h := range m.Handlers {
		if h.Module == module {
			out = append(out, h.Func)
		}
	}
	if len(out) == 0 {
		out = append(out, module+" (no handler found)")
	}
	return out
}

// operation is module's operation on m's channel.
func operation(m msg, module, action, desc string) map[string]any {
	op := map[string]any{
		"action": action, "channel": ref("#/channels/" + m.Name()),
		"title": module + " " + action + "s " + m.Name(), "summary": m.Summary, "description": desc,
		"messages": []any{ref("#/channels/" + m.Name() + "/messages/" + m.Short())},
		"tags":     []any{map[string]any{"name": module}},
	}
	if m.Kind() == message.KindRequest {
		reply := "#/channels/" + m.Name() + ".reply"
		op["reply"] = map[string]any{"channel": ref(reply), "messages": []any{
			ref(reply + "/messages/" + m.Short() + "Reply"), ref(reply + "/messages/Error"),
		}}
	}
	return op
}

// messageObject describes one of m's messages (its payload, or its reply).
func messageObject(m msg, name, summary string, payload any) map[string]any {
	o := map[string]any{
		"name": name, "title": fmt.Sprintf("%s v%d", name, m.Version), "summary": summary,
		"contentType": "application/json", "headers": ref(schemaPrefix + "AgoraHeaders"), "payload": payload,
		"x-agora-kind": string(m.Kind()), "x-agora-version": m.Version, "x-agora-owner": m.Owner,
		"x-agora-contract": m.File + "#" + m.Var,
		// Who else takes part, named for what they do with it.
		map[message.Kind]string{message.KindRequest: "x-agora-callers", message.KindCommand: "x-agora-senders",
			message.KindEvent: "x-agora-subscribers"}[m.Kind()]: append([]string{}, m.consumers()...),
	}
	if m.Declaration.Parked {
		o["x-agora-parked"] = true
	}
	if m.RenamedFrom != "" {
		o["x-agora-renamed"] = map[string]any{"from": m.RenamedFrom, "to": m.RenamedTo}
	}
	return o
}

// errorMessage is the reply a request gets when its handler fails.
func errorMessage(s *schemas) map[string]any {
	sc, _ := plain(s.reg.Schema(reflect.TypeFor[message.Error](), true, "Error"))
	return map[string]any{
		"name": "Error", "title": "message.Error", "contentType": "application/json",
		"summary": "A request's failure: a stable kind and code (errors.Is matches the contract's sentinels on either side), and a message safe to show.",
		"headers": ref(schemaPrefix + "AgoraHeaders"), "payload": sc,
	}
}

func ref(to string) map[string]any { return map[string]any{"$ref": to} }

// headersSchema describes the NATS headers that carry a message's envelope.
var headersSchema = map[string]any{
	"type": "object", "required": []string{"Agora-Id", "Agora-Type", "Agora-Kind", "Agora-Time"},
	"properties": map[string]any{
		"Agora-Id":             map[string]any{"type": "string", "description": "the message id (UUIDv7); JetStream's Nats-Msg-Id and every inbox de-duplicate on it"},
		"Agora-Type":           map[string]any{"type": "string", "description": "the message's name, e.g. orders.OrderPlaced"},
		"Agora-Kind":           map[string]any{"type": "string", "enum": []string{"request", "command", "event"}},
		"Agora-Correlation-Id": map[string]any{"type": "string", "description": "the id of the outside action (HTTP request) that started the chain"},
		"Agora-Causation-Id":   map[string]any{"type": "string", "description": "the id of the message or request that caused this one"},
		"Agora-Time":           map[string]any{"type": "string", "format": "date-time"},
		"Agora-Timeout-Ms":     map[string]any{"type": "string", "description": "requests: the caller's remaining deadline in milliseconds"},
		"Agora-Error":          map[string]any{"type": "string", "description": "replies: set when the body is a message.Error"},
		"Agora-Local":          map[string]any{"type": "string", "description": "durable messages: the consumers the publisher already delivered to in its own process"},
		"traceparent":          map[string]any{"type": "string", "description": "W3C trace context"},
	},
}
