// Package contracts reads the modules' contracts with go/parser and go/ast (no
// type checking, no build): the registry's modules in start order, each message
// declaration with its owner, kind and doc comment, the functions that handle it
// and the modules that use it. tools/archdoc draws docs/architecture.md from it and
// tools/asyncapigen the AsyncAPI document; the message types themselves, which only
// the compiler knows, come from message.Declarations.
package contracts

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Model is what the code says about the modules and their messages.
type Model struct {
	Root    string // the repository root, where go.mod is
	Prefix  string // the Go module path, from go.mod
	Modules []*Module
	Decls   []*Decl // in registry order of their owners, then in source order

	fset *token.FileSet
}

// Module is one folder modules/<Name>, registered in modules/modules.go or not.
type Module struct {
	Name       string
	Registered bool
	Summary    string   // what the contract's package comment says the module is for
	DependsOn  []string // modules whose contract its code imports, in registry order
	pkgs       []*pkg   // its packages other than the contract and test helpers
	contract   []*ast.File
	contractAt []string // the contract's file names, beside contract
}

// Decl is one message declaration in a contract.
type Decl struct {
	Var     string // e.g. PlaceOrderRequest
	Name    string // the message's name, e.g. orders.PlaceOrder
	Kind    string // request, command or event
	Parked  bool
	Owner   string // the module whose contract declares it
	Summary string // the first sentence of its doc comment, or of its payload type's
	File    string // the contract file, relative to Root

	Handlers []Handler
	Users    []string // other modules whose code refers to it, in registry order

	spec   *ast.ValueSpec
	parent *ast.GenDecl
}

// Handler is a function that handles a message in a module.
type Handler struct {
	Module string
	Func   string // e.g. checkout.(*Service).PlaceOrder
	File   string // where Func is declared, relative to Root
}

// pkg is one non-contract package of a module, parsed without its tests.
type pkg struct {
	Dir   string // relative to Root
	Name  string
	Files []*ast.File
	names []string                 // file paths relative to Root, beside Files
	funcs map[string]*ast.FuncDecl // by funcKey
	file  map[*ast.FuncDecl]int    // index in Files of each function's file
}

// Load reads the registry, every module folder and every contract under root.
// It fails when the registry cannot be read or a declaration is not one it
// understands; it never guesses.
func Load(root string) (*Model, error) {
	m := &Model{Root: root, fset: token.NewFileSet()}
	var err error
	if m.Prefix, err = modulePath(filepath.Join(root, "go.mod")); err != nil {
		return nil, err
	}
	registered, err := m.registry()
	if err != nil {
		return nil, err
	}
	if err := m.loadModules(registered); err != nil {
		return nil, err
	}
	for _, mod := range m.Modules {
		if err := m.loadDecls(mod); err != nil {
			return nil, err
		}
	}
	if err := m.resolve(); err != nil {
		return nil, err
	}
	return m, nil
}

// modulePath returns the module line of go.mod.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", gomod)
}

// registry returns the modules All() in modules/modules.go lists, in its order:
// each entry is a call X.New() where X imports <prefix>/modules/<name>/module.
func (m *Model) registry() ([]string, error) {
	path := filepath.Join(m.Root, "modules", "modules.go")
	f, err := parser.ParseFile(m.fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	imports := importsOf(f)
	var names []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "All" || fd.Recv != nil {
			continue
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "New" {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			rest, ok := strings.CutPrefix(imports[x.Name], m.Prefix+"/modules/")
			if name, ok2 := strings.CutSuffix(rest, "/module"); ok && ok2 && !strings.Contains(name, "/") {
				names = append(names, name)
			}
			return true
		})
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: All() lists no module's New()", path)
	}
	return names, nil
}

// importsOf maps each import's name in f (its alias, or its last path element) to its path.
func importsOf(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, is := range f.Imports {
		p, _ := strconv.Unquote(is.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		out[name] = p
	}
	return out
}

// loadModules parses every module folder: the registered ones in registry order,
// then any unregistered folder by name (its code still calls and listens).
func (m *Model) loadModules(registered []string) error {
	entries, err := os.ReadDir(filepath.Join(m.Root, "modules"))
	if err != nil {
		return err
	}
	var others []string
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(registered, e.Name()) {
			others = append(others, e.Name())
		}
	}
	for i, name := range append(slices.Clone(registered), others...) {
		mod := &Module{Name: name, Registered: i < len(registered)}
		if err := m.parseModule(mod); err != nil {
			return err
		}
		m.Modules = append(m.Modules, mod)
	}
	return nil
}

// parseModule parses the contract (the files directly in modules/<name>) and every
// other package below it, leaving out tests, testdata and test-helper packages
// (those whose name ends in "test", like ordertest): fakes there handle other
// modules' messages and are no part of the architecture.
func (m *Model) parseModule(mod *Module) error {
	dir := filepath.Join(m.Root, "modules", mod.Name)
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		files, names, err := m.parseDir(path)
		if err != nil || len(files) == 0 {
			return err
		}
		if path == dir {
			mod.contract, mod.contractAt = files, names
			return nil
		}
		if strings.HasSuffix(files[0].Name.Name, "test") {
			return nil
		}
		p := &pkg{Dir: m.rel(path), Name: files[0].Name.Name, Files: files, names: names, funcs: map[string]*ast.FuncDecl{}, file: map[*ast.FuncDecl]int{}}
		for i, f := range files {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok {
					p.funcs[funcKey(fd)], p.file[fd] = fd, i
				}
			}
		}
		mod.pkgs = append(mod.pkgs, p)
		return nil
	})
}

// parseDir parses the non-test Go files of one directory, with comments.
func (m *Model) parseDir(dir string) ([]*ast.File, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	var files []*ast.File
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		path := filepath.Join(dir, n)
		f, err := parser.ParseFile(m.fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		names = append(names, m.rel(path))
	}
	return files, names, nil
}

// rel returns path relative to the root, with forward slashes.
func (m *Model) rel(path string) string {
	r, err := filepath.Rel(m.Root, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(r)
}

// funcKey names a function declaration: "f" for a function, "T.f" for a method
// (whatever its receiver's pointerness).
func funcKey(fd *ast.FuncDecl) string {
	if t := recvType(fd); t != "" {
		return t + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// recvType returns the name of fd's receiver type, without its star or type
// parameters; "" for a function.
func recvType(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	switch x := t.(type) {
	case *ast.IndexExpr:
		t = x.X
	case *ast.IndexListExpr:
		t = x.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// module returns the module called name, or nil.
func (m *Model) module(name string) *Module {
	for _, mod := range m.Modules {
		if mod.Name == name {
			return mod
		}
	}
	return nil
}

// order returns a module's position in the model (registry order first).
func (m *Model) order(name string) int {
	return slices.IndexFunc(m.Modules, func(mod *Module) bool { return mod.Name == name })
}

// HandledIn reports whether a function of module handles d.
func (d *Decl) HandledIn(module string) bool {
	for _, h := range d.Handlers {
		if h.Module == module {
			return true
		}
	}
	return false
}

// UsedBy reports whether module's code uses d (calls, sends or subscribes to it).
func (d *Decl) UsedBy(module string) bool {
	for _, u := range d.Users {
		if u == module {
			return true
		}
	}
	return false
}
