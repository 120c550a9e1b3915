package contracts

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// handledLines are the doc comment lines a declaration should end with: one per
// handler ("Handled by checkout.(*Service).PlaceOrder."), each prefixed with its
// module for an event or for a handler outside the owner, or one line saying no
// module handles it (only events may be left so; see resolve).
func (d *Decl) handledLines() []string {
	if len(d.Handlers) == 0 {
		return []string{"// " + handledPrefix + "no module."}
	}
	var out []string
	for _, h := range d.Handlers {
		who := h.Func
		if d.Kind == "event" || h.Module != d.Owner {
			who = h.Module + ": " + who
		}
		out = append(out, "// "+handledPrefix+who+".")
	}
	return out
}

// ContractFiles returns every contract file as it should be, with each
// declaration's doc comment ending in its handledLines, by path relative to the
// root; the files already right are left out.
func (m *Model) ContractFiles() (map[string][]byte, error) {
	byFile := map[string][]*Decl{}
	for _, d := range m.Decls {
		byFile[d.File] = append(byFile[d.File], d)
	}
	out := map[string][]byte{}
	for file, decls := range byFile {
		src, err := os.ReadFile(filepath.Join(m.Root, file))
		if err != nil {
			return nil, err
		}
		edited, err := m.rewrite(src, decls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if !bytes.Equal(edited, src) {
			out[file] = edited
		}
	}
	return out, nil
}

// edit replaces src[from:to] with text.
type edit struct {
	from, to int
	text     string
}

// rewrite returns src with each declaration's "Handled by" lines replaced by the
// wanted ones (inserted above a declaration that has none), gofmt'ed. The rest of
// a doc comment is the author's and stays as it is.
func (m *Model) rewrite(src []byte, decls []*Decl) ([]byte, error) {
	var edits []edit
	for _, d := range decls {
		anchor := d.spec.Pos() // the line the comment sits above
		if d.parent.Lparen == 0 {
			anchor = d.parent.Pos()
		}
		at := m.fset.Position(anchor)
		lineStart := at.Offset - (at.Column - 1)
		indent := string(src[lineStart:at.Offset])
		text := indent + strings.Join(d.handledLines(), "\n"+indent) + "\n"
		from, to := lineStart, lineStart
		if doc := d.docGroup(); doc != nil {
			// Replace the trailing run of "Handled by" lines, if any.
			for i := len(doc.List) - 1; i >= 0 && strings.HasPrefix(doc.List[i].Text, "// "+handledPrefix); i-- {
				p := m.fset.Position(doc.List[i].Pos())
				from = p.Offset - (p.Column - 1)
			}
		}
		edits = append(edits, edit{from, to, text})
	}
	slices.SortFunc(edits, func(a, b edit) int { return b.from - a.from })
	out := slices.Clone(src)
	for _, e := range edits {
		out = slices.Concat(out[:e.from], []byte(e.text), out[e.to:])
	}
	return format.Source(out)
}

// docGroup returns the doc comment that documents the declaration: its own, or
// its var declaration's when it stands alone.
func (d *Decl) docGroup() *ast.CommentGroup {
	if d.spec.Doc != nil {
		return d.spec.Doc
	}
	if d.parent.Lparen == 0 {
		return d.parent.Doc
	}
	return nil
}
