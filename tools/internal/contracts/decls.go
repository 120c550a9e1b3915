package contracts

import (
	"fmt"
	"go/ast"
	"strconv"
	"strings"
)

// kinds maps the vocabulary's constructors to the kinds of message they declare.
var kinds = map[string]string{"NewRequest": "request", "NewCommand": "command", "NewEvent": "event"}

// options are the methods a declaration may be wrapped in.
var options = map[string]bool{"Parked": true, "Renamed": true, "AtVersion": true}

// handledPrefix starts the doc comment lines this tool maintains.
const handledPrefix = "Handled by "

// loadDecls reads mod's contract: its summary from the package comment and every
// package-level var initialised by message.NewRequest/NewCommand/NewEvent (with
// .Parked(), .Renamed(…) or .AtVersion(n) or not).
func (m *Model) loadDecls(mod *Module) error {
	types := map[string]string{} // type name → first sentence of its doc
	for _, f := range mod.contract {
		if f.Doc != nil && mod.Summary == "" {
			mod.Summary = packageSummary(mod.Name, f.Doc.Text())
		}
		for _, d := range f.Decls {
			if gd, ok := d.(*ast.GenDecl); ok {
				for _, s := range gd.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						types[ts.Name.Name] = firstSentence(docOf(ts.Doc, gd))
					}
				}
			}
		}
	}
	for i, f := range mod.contract {
		vocab := importName(f, m.Prefix+"/internal/message")
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				vs, ok := s.(*ast.ValueSpec)
				if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
					continue
				}
				decl, payload, err := declaration(vs.Values[0], vocab)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", m.fset.Position(vs.Pos()), vs.Names[0].Name, err)
				}
				if decl == nil {
					continue
				}
				decl.Var, decl.Owner, decl.File = vs.Names[0].Name, mod.Name, mod.contractAt[i]
				decl.spec, decl.parent = vs, gd
				if decl.Summary = firstSentence(ownDoc(docOf(vs.Doc, gd))); decl.Summary == "" {
					decl.Summary = types[payload]
				}
				m.Decls = append(m.Decls, decl)
			}
		}
	}
	return nil
}

// declaration returns the message declared by e, and the name of its payload type
// (the request, command or event), or nil when e declares none.
func declaration(e ast.Expr, vocab string) (*Decl, string, error) {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return nil, "", nil
	}
	d := &Decl{}
	// Unwrap the declaration's options: .Parked(), .Renamed(old, new), .AtVersion(n).
	for {
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !options[sel.Sel.Name] {
			break
		}
		inner, ok := sel.X.(*ast.CallExpr)
		if !ok {
			break
		}
		d.Parked = d.Parked || sel.Sel.Name == "Parked"
		call = inner
	}
	var fun ast.Expr
	var typeArgs []ast.Expr
	switch f := call.Fun.(type) {
	case *ast.IndexExpr:
		fun, typeArgs = f.X, []ast.Expr{f.Index}
	case *ast.IndexListExpr:
		fun, typeArgs = f.X, f.Indices
	default:
		return nil, "", nil
	}
	sel, ok := fun.(*ast.SelectorExpr)
	if x, isIdent := sel.X.(*ast.Ident); !ok || !isIdent || x.Name != vocab || kinds[sel.Sel.Name] == "" {
		return nil, "", nil
	}
	d.Kind = kinds[sel.Sel.Name]
	lit, ok := call.Args[0].(*ast.BasicLit)
	if len(call.Args) != 1 || !ok {
		return nil, "", fmt.Errorf("a %s's name must be a string literal", d.Kind)
	}
	d.Name, _ = strconv.Unquote(lit.Value)
	payload := ""
	if id, ok := typeArgs[0].(*ast.Ident); ok {
		payload = id.Name
	}
	return d, payload, nil
}

// importName returns the name under which f imports path ("" if it does not).
func importName(f *ast.File, path string) string {
	for name, p := range importsOf(f) {
		if p == path {
			return name
		}
	}
	return ""
}

// docOf returns a spec's own doc comment, or its declaration's when the spec is
// the declaration's only one (type T struct{…} keeps its doc on the GenDecl).
func docOf(own *ast.CommentGroup, gd *ast.GenDecl) string {
	if own != nil {
		return own.Text()
	}
	if gd.Lparen == 0 && gd.Doc != nil {
		return gd.Doc.Text()
	}
	return ""
}

// ownDoc returns a doc comment's text without the lines this tool writes.
func ownDoc(text string) string {
	var keep []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, handledPrefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// firstSentence returns the first sentence of a doc comment's first paragraph, on
// one line: up to the first period followed by a space that does not end a single
// capital letter (an initial). Not go/doc's Synopsis, which drops a sentence that
// starts like a copyright line ("AuthorizePayment…" starts with "Author").
func firstSentence(text string) string {
	para, _, _ := strings.Cut(strings.TrimSpace(text), "\n\n")
	s := strings.Join(strings.Fields(para), " ")
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '.' || s[i+1] != ' ' {
			continue
		}
		initial := i >= 1 && 'A' <= s[i-1] && s[i-1] <= 'Z' && (i == 1 || s[i-2] == ' ')
		if !initial {
			return s[:i+1]
		}
	}
	return s
}

// packageSummary returns what a contract's package comment says the module is
// for: the part of its first sentence after "Package x is the contract of the x
// module:", or the whole sentence when it is written otherwise.
func packageSummary(name, text string) string {
	s := firstSentence(text)
	if _, rest, ok := strings.Cut(s, "the contract of the "+name+" module: "); ok {
		return rest
	}
	return s
}
