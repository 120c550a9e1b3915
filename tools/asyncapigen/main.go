// Command asyncapigen writes api/asyncapi.yaml, the AsyncAPI 3.0 description of
// every message on the bus, and keeps api/message-versions.json, the schema each
// version of each message was released with, so that no payload changes in a way
// its receivers would misread without a new version.
//
//	go run ./tools/asyncapigen          # rewrite both files (refuses a breaking change)
//	go run ./tools/asyncapigen -check   # change nothing; exit 1 on drift or a breaking change
//
// What it knows comes from two places, each for what only it can say:
//
//   - the contracts' source (tools/internal/contracts, the reader tools/archdoc
//     uses): which messages exist, their owner, doc comment, the functions
//     that handle them and the modules that call, send or subscribe to them;
//   - the compiled declarations (message.Declarations, filled in when the
//     registry's contracts are initialised): each message's version and the Go
//     types of its payload and reply, described as JSON Schema by huma's registry
//     — the same rules that describe the HTTP API in api/openapi.yaml.
//
// A message one of them knows and the other does not is an error. Besides the
// contracts' messages, the document lists the requests every hosted module answers
// for the platform's operator tools (modhost.OpsDeclarations), as ops.<Name> on
// agora.req.{module}.ops.<Name>.
//
// The compatibility rules are docs/adr/0013-message-versions.md: within a version a
// payload (and a request's reply) may only gain optional fields; a field removed,
// renamed, retyped, made optional or newly always sent needs the next version
// (AtVersion), and api/message-versions.json keeps the previous version's schema.
// tests/asyncapi_test.go runs -check.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agora-commerce/agora/internal/message"
	_ "github.com/agora-commerce/agora/modules" // the registry: every contract's declarations
	"github.com/agora-commerce/agora/tools/internal/contracts"
	"github.com/agora-commerce/agora/tools/internal/genfiles"
)

// The generated files, relative to the root.
const (
	docPath  = "api/asyncapi.yaml"
	lockPath = "api/message-versions.json"
)

func main() {
	check := flag.Bool("check", false, "change nothing; fail if a file is stale or a message changed incompatibly")
	root := flag.String("root", ".", "the repository root (where go.mod is)")
	flag.Parse()
	if err := run(*root, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "asyncapigen:", err)
		os.Exit(1)
	}
}

// errStale is returned by run in check mode when a file is not as generated.
var errStale = errors.New("generated files are stale: run `go run ./tools/asyncapigen` and commit the result")

// run generates both files under root from the contracts there and the
// declarations compiled into this program. A breaking change is an error in
// both modes; with check it writes nothing and returns errStale when a file differs.
func run(root string, check bool, w io.Writer) error {
	m, err := contracts.Load(root)
	if err != nil {
		return err
	}
	msgs, err := join(m, message.Declarations())
	if err != nil {
		return err
	}
	s := newSchemas()
	for _, msg := range msgs {
		s.describe(msg)
	}
	old, err := readLock(filepath.Join(root, lockPath))
	if err != nil {
		return err
	}
	lock, err := old.update(msgs, s)
	if err != nil {
		return err
	}
	doc, err := document(msgs, s)
	if err != nil {
		return err
	}
	lockJSON, err := lock.marshal()
	if err != nil {
		return err
	}
	return genfiles.Sync(root, map[string][]byte{docPath: doc, lockPath: lockJSON}, check, w, errStale)
}
