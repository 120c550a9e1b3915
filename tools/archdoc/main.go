// Command archdoc redraws the parts of docs/architecture.md that the code already
// says — the module map and the message table — and keeps every message
// declaration's doc comment naming the functions that handle it, so neither can
// drift from the code.
//
//	go run ./tools/archdoc          # rewrite the generated sections and the "Handled by" lines
//	go run ./tools/archdoc -check   # change nothing; exit 1 and say what is stale
//
// It reads the code with go/parser and go/ast only (no type checking, no build):
//
//   - the modules, in start order, from the New() calls in modules.All()
//     (modules/modules.go), then any module folder the registry does not list;
//   - each contract's declarations: package-level vars set by message.NewRequest,
//     NewCommand or NewEvent (optionally .Parked(), .Renamed(…) or .AtVersion(n)), with the first sentence of
//     their doc comment, or of their payload type's when they have none;
//   - the handlers: the function passed beside a declaration to bus.Handle,
//     outbox.SubscribeEvent(For) or outbox.SubscribeCommand, named from the enclosing
//     function's receiver (s.PlaceOrder in a method of *Service in package
//     checkout is checkout.(*Service).PlaceOrder). A call to a function of the
//     same package that passes a declaration on to one of those (a small generic
//     wrapper) is followed one level;
//   - the users: every reference from a module's code (tests and test-helper
//     packages, named *test, left out) to another module's declaration.
//
// The generated sections sit between markers in the document (see beginMarker),
// so the prose around them stays hand-written. tests/archdoc_test.go runs -check.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/agora-commerce/agora/tools/internal/contracts"
	"github.com/agora-commerce/agora/tools/internal/genfiles"
)

// docPath is the document the generated sections live in, relative to the root.
const docPath = "docs/architecture.md"

func main() {
	check := flag.Bool("check", false, "change nothing; fail if the document or a contract's comments are stale")
	root := flag.String("root", ".", "the repository root (where go.mod is)")
	flag.Parse()
	if err := run(*root, *check, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "archdoc:", err)
		os.Exit(1)
	}
}

// errStale is returned by run in check mode when something is not as generated.
var errStale = errors.New("generated text is stale: run `go run ./tools/archdoc` and commit the result")

// run generates everything under root. With check it writes nothing and returns
// errStale, after listing on w each stale file and how it differs, when any
// file is not as generated.
func run(root string, check bool, w io.Writer) error {
	m, err := contracts.Load(root)
	if err != nil {
		return err
	}
	files, err := m.ContractFiles()
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(filepath.Join(root, docPath))
	if err != nil {
		return err
	}
	newDoc, err := splice(string(doc), sections(m))
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if newDoc != string(doc) {
		files[docPath] = []byte(newDoc)
	}
	return genfiles.Sync(root, files, check, w, errStale)
}
