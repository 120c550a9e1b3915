package contracts

import (
	"fmt"
	"go/ast"
	"slices"
	"strings"
)

// registrar is a platform function that registers a handler for a declaration:
// the positions of the declaration and of the handler among its arguments.
type registrar struct{ decl, handler int }

// registrars are the calls that say who handles a message, by import path
// (after the module prefix) and name.
var registrars = map[string]registrar{
	"/internal/bus.Handle":               {0, 1},
	"/internal/outbox.SubscribeEvent":    {1, 3},
	"/internal/outbox.SubscribeEventFor": {1, 4},
	"/internal/outbox.SubscribeCommand":  {1, 3},
}

// scope is one function of a package being read: what its names refer to.
type scope struct {
	mod *Module
	pkg *pkg
	fn  *ast.FuncDecl
	imp map[string]string // import name → path, in fn's file
}

// resolve finds, in every module's code, the handlers of each declaration, the
// modules that refer to each, and the contracts each module imports. A request or
// command nobody handles is an error: either the code is wrong or this tool has
// missed a way of registering, and either way the document would lie.
func (m *Model) resolve() error {
	byRef := map[string]*Decl{} // "<module>.<Var>"
	for _, d := range m.Decls {
		byRef[d.Owner+"."+d.Var] = d
	}
	for _, mod := range m.Modules {
		deps := map[string]bool{}
		for _, p := range mod.pkgs {
			for i, f := range p.Files {
				imp := importsOf(f)
				m.uses(mod, f, imp, byRef, deps)
				for _, d := range f.Decls {
					if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
						if err := m.handlers(scope{mod, p, fd, imp}, byRef); err != nil {
							return fmt.Errorf("%s: %w", p.names[i], err)
						}
					}
				}
			}
		}
		for _, other := range m.Modules {
			if deps[other.Name] {
				mod.DependsOn = append(mod.DependsOn, other.Name)
			}
		}
	}
	for _, d := range m.Decls {
		slices.SortStableFunc(d.Handlers, func(a, b Handler) int {
			if c := m.order(a.Module) - m.order(b.Module); c != 0 {
				return c
			}
			return strings.Compare(a.Func, b.Func)
		})
		slices.SortFunc(d.Users, func(a, b string) int { return m.order(a) - m.order(b) })
		if len(d.Handlers) == 0 && d.Kind != "event" {
			return fmt.Errorf("%s: no module handles %s %s: register it with bus.Handle or outbox.SubscribeCommand (or teach tools/archdoc the new way)", d.File, d.Kind, d.Name)
		}
	}
	return nil
}

// contractOf returns the module whose contract path is, or "".
func (m *Model) contractOf(path string) string {
	rest, ok := strings.CutPrefix(path, m.Prefix+"/modules/")
	if !ok || strings.Contains(rest, "/") || m.module(rest) == nil {
		return ""
	}
	return rest
}

// uses records every other module's contract that f imports (in deps) and every
// declaration of another module that f refers to (in its Users).
func (m *Model) uses(mod *Module, f *ast.File, imp map[string]string, byRef map[string]*Decl, deps map[string]bool) {
	for _, p := range imp {
		if c := m.contractOf(p); c != "" && c != mod.Name {
			deps[c] = true
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if d := m.declRef(n, imp, byRef); d != nil && d.Owner != mod.Name && !slices.Contains(d.Users, mod.Name) {
			d.Users = append(d.Users, mod.Name)
		}
		return true
	})
}

// declRef returns the declaration n refers to (contract.Var), or nil.
func (m *Model) declRef(n ast.Node, imp map[string]string, byRef map[string]*Decl) *Decl {
	sel, ok := n.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return nil
	}
	c := m.contractOf(imp[x.Name])
	if c == "" {
		return nil
	}
	return byRef[c+"."+sel.Sel.Name]
}

// registrarOf returns how call registers a handler, if it is a registrar's call.
func (m *Model) registrarOf(call *ast.CallExpr, imp map[string]string) (registrar, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return registrar{}, false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return registrar{}, false
	}
	path, ok := strings.CutPrefix(imp[x.Name], m.Prefix)
	r, known := registrars[path+"."+sel.Sel.Name]
	if !ok || !known || len(call.Args) <= max(r.decl, r.handler) {
		return registrar{}, false
	}
	return r, true
}

// handlers records the handlers registered in s.fn: by a registrar's call with a
// declaration among its arguments, or by a call to a small function of the same
// package (a wrapper) that passes its parameters on to a registrar.
func (m *Model) handlers(s scope, byRef map[string]*Decl) error {
	var err error
	ast.Inspect(s.fn.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || err != nil {
			return err == nil
		}
		if r, ok := m.registrarOf(call, s.imp); ok {
			if d := m.declRef(call.Args[r.decl], s.imp, byRef); d != nil {
				var h Handler
				if h, err = m.handlerName(s, call.Args[r.handler]); err == nil {
					d.Handlers = append(d.Handlers, h)
				}
			}
			return true
		}
		for i, a := range call.Args {
			if d := m.declRef(a, s.imp, byRef); d != nil {
				var hs []Handler
				hs, err = m.throughWrapper(s, call, i)
				d.Handlers = append(d.Handlers, hs...)
			}
		}
		return true
	})
	return err
}

// throughWrapper follows call, which passes a declaration as its argument i, into
// the callee when it is a function or method of the same package, and returns the
// handlers the callee registers for that parameter. A handler that is one of the
// callee's parameters is named from call's argument; one written in the callee is
// named there. A callee that registers nothing for it is not a wrapper: nil.
func (m *Model) throughWrapper(s scope, call *ast.CallExpr, i int) ([]Handler, error) {
	callee := s.callee(call)
	if callee == nil || callee.Body == nil {
		return nil, nil
	}
	params := paramNames(callee)
	if i >= len(params) {
		return nil, nil
	}
	inner := scope{s.mod, s.pkg, callee, importsOf(s.pkg.Files[s.pkg.file[callee]])}
	var out []Handler
	var err error
	ast.Inspect(callee.Body, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok || err != nil {
			return err == nil
		}
		r, ok := m.registrarOf(c, inner.imp)
		if !ok {
			return true
		}
		if id, isIdent := c.Args[r.decl].(*ast.Ident); !isIdent || id.Name != params[i] {
			return true
		}
		h, outer := c.Args[r.handler], inner
		if id, ok := h.(*ast.Ident); ok {
			if j := slices.Index(params, id.Name); j >= 0 && j < len(call.Args) {
				h, outer = call.Args[j], s
			}
		}
		var name Handler
		if name, err = m.handlerName(outer, h); err == nil {
			out = append(out, name)
		}
		return true
	})
	return out, err
}

// callee returns the declaration of the same-package function or method (on s.fn's
// receiver) that call calls, or nil.
func (s scope) callee(call *ast.CallExpr) *ast.FuncDecl {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return s.pkg.funcs[f.Name]
	case *ast.IndexExpr: // an explicitly instantiated generic function
		if id, ok := f.X.(*ast.Ident); ok {
			return s.pkg.funcs[id.Name]
		}
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok && x.Name == recvName(s.fn) {
			return s.pkg.funcs[recvType(s.fn)+"."+f.Sel.Name]
		}
	}
	return nil
}

// paramNames returns fd's parameter names in order ("_" for unnamed ones).
func paramNames(fd *ast.FuncDecl) []string {
	var out []string
	for _, f := range fd.Type.Params.List {
		if len(f.Names) == 0 {
			out = append(out, "_")
		}
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
	}
	return out
}

// recvName returns the name of fd's receiver, or "".
func recvName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 || len(fd.Recv.List[0].Names) == 0 {
		return ""
	}
	return fd.Recv.List[0].Names[0].Name
}

// handlerName names the handler e, written in s.fn: a method value on s.fn's
// receiver ("checkout.(*Service).PlaceOrder"), a function of the package
// ("stock.onReserve"), or a function literal, named after the function that holds
// it ("checkout.on (func literal)"). Anything else is an error, so the tool never
// writes a name it did not find.
func (m *Model) handlerName(s scope, e ast.Expr) (Handler, error) {
	at := func(fd *ast.FuncDecl) string { return s.pkg.names[s.pkg.file[fd]] }
	switch h := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := h.X.(*ast.Ident); ok && x.Name == recvName(s.fn) {
			fd := s.pkg.funcs[recvType(s.fn)+"."+h.Sel.Name]
			if fd == nil {
				fd = s.fn // a promoted method: name it on the receiver's type all the same
			}
			return Handler{s.mod.Name, s.pkg.Name + "." + methodOf(fd, s.fn, h.Sel.Name), at(fd)}, nil
		}
	case *ast.Ident:
		if fd := s.pkg.funcs[h.Name]; fd != nil && fd.Recv == nil {
			return Handler{s.mod.Name, s.pkg.Name + "." + h.Name, at(fd)}, nil
		}
	case *ast.FuncLit:
		name := s.fn.Name.Name
		if s.fn.Recv != nil {
			name = methodOf(s.fn, s.fn, name)
		}
		return Handler{s.mod.Name, s.pkg.Name + "." + name + " (func literal)", at(s.fn)}, nil
	}
	return Handler{}, fmt.Errorf("%s: cannot name the handler %s: pass a method value, a function or a function literal",
		m.fset.Position(e.Pos()), exprString(e))
}

// methodOf writes method name of fd's receiver type as "(*T).name" or "T.name",
// after the receiver of decl (the method's own declaration when found).
func methodOf(decl, in *ast.FuncDecl, name string) string {
	t := recvType(in)
	if _, ptr := decl.Recv.List[0].Type.(*ast.StarExpr); ptr {
		return "(*" + t + ")." + name
	}
	return t + "." + name
}

// exprString gives a short description of e for error messages.
func exprString(e ast.Expr) string {
	return fmt.Sprintf("%T", e)
}
