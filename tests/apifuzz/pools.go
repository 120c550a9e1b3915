package apifuzz

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
)

// poolSize bounds each pool: a new value replaces a random old one once full.
const poolSize = 256

// Pools holds real values harvested from answers (ids, SKUs, cursors, ETags,
// refresh tokens…), by kind, so that later requests can name things that exist.
// A kind is a singular noun: "product", "order", "user", "sku", "cursor", "etag".
// Pools is safe for concurrent use.
type Pools struct {
	mu      sync.RWMutex
	m       map[string][]string
	aliases map[string]string
	wanted  map[string]bool // kinds that requests take; set by Run before it starts
}

// NewPools returns empty pools. aliases maps a kind to the kind it is stored as
// (e.g. "customer" → "user", "me" → "user"); If-Match and If-None-Match take
// ETags whatever aliases says.
func NewPools(aliases map[string]string) *Pools {
	a := map[string]string{"if-match": "etag", "if-none-match": "etag"}
	maps.Copy(a, aliases)
	return &Pools{m: map[string][]string{}, aliases: a}
}

func (p *Pools) kind(k string) string {
	if a, ok := p.aliases[k]; ok {
		return a
	}
	return k
}

// Add records v as a value of kind k (an empty v is ignored).
func (p *Pools) Add(r *rand.Rand, k, v string) {
	if v == "" {
		return
	}
	k = p.kind(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	vs := p.m[k]
	for _, old := range vs {
		if old == v {
			return
		}
	}
	if len(vs) < poolSize {
		p.m[k] = append(vs, v)
		return
	}
	vs[r.IntN(len(vs))] = v
}

// Pick returns a random value of kind k, or false when there is none.
func (p *Pools) Pick(r *rand.Rand, k string) (string, bool) {
	k = p.kind(k)
	p.mu.RLock()
	defer p.mu.RUnlock()
	vs := p.m[k]
	if len(vs) == 0 {
		return "", false
	}
	return vs[r.IntN(len(vs))], true
}

// Len returns how many values of kind k the pools hold.
func (p *Pools) Len(k string) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.m[p.kind(k)])
}

// kindOfName is the kind of value a parameter or property named name carries:
// product_id → product, next_cursor → cursor, anything else its own name.
func kindOfName(name string) string {
	name = strings.ToLower(name)
	if k, ok := strings.CutSuffix(name, "_id"); ok && k != "" {
		return k
	}
	if k, ok := strings.CutPrefix(name, "next_"); ok {
		return k
	}
	return name
}

// resourceOf is the kind of the top-level "id"s in an answer of the operation on
// path: its last segment if that is literal, else the literal segment before its
// last parameter, made singular (/v1/products/{id} → product, /v1/orders →
// order, /v1/orders/{id}/cancel → cancel, which callers alias to order).
func resourceOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	last := ""
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			continue
		}
		if i+1 < len(segs) && strings.HasPrefix(segs[i+1], "{") || i == len(segs)-1 {
			last = s
		}
	}
	return singular(last)
}

func singular(s string) string {
	if strings.HasSuffix(s, "ss") {
		return s
	}
	return strings.TrimSuffix(s, "s")
}

// paramKind is the kind of value a path or query parameter takes.
func paramKind(path string, p Param) string {
	if i := strings.Index(path, "/{id}"); p.Name == "id" && p.In == "path" && i >= 0 {
		return resourceOf(path[:i] + "/{id}") // the literal segment just before {id} names it
	}
	return kindOfName(p.Name)
}

// set makes v the one value of kind k.
func (p *Pools) set(k, v string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[k] = []string{v}
}

// etagKind is the kind under which the current ETag of the resource a path
// parameter (or an answer's id) names is kept.
func etagKind(id string) string { return "etag " + id }

// harvest records the values in a successful JSON answer to req: the "id" of the
// top-level object or of each element of its "items", as the operation's
// resource; every string under a key whose kind some request takes (product_id,
// sku, next_cursor, refresh_token, email…), as that kind; and the ETag header, as
// the current one of the resource the request's path or the answer's id names.
func (p *Pools) harvest(r *rand.Rand, req *request, h http.Header, body []byte) {
	var v any
	_ = json.Unmarshal(body, &v)
	top, _ := v.(map[string]any)
	if et := h.Get("ETag"); et != "" {
		p.Add(r, "etag", et)
		for _, id := range req.path {
			p.set(etagKind(id), et)
		}
		if id, ok := top["id"].(string); ok {
			p.set(etagKind(id), et)
		}
	}
	res := resourceOf(req.op.Path)
	if id, ok := top["id"].(string); ok {
		p.Add(r, res, id)
	}
	if items, ok := top["items"].([]any); ok {
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				if id, ok := m["id"].(string); ok {
					p.Add(r, res, id)
				}
			}
		}
	}
	p.walk(r, v, 0)
}

func (p *Pools) walk(r *rand.Rand, v any, depth int) {
	if depth > 6 {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k != "id" && p.wanted[p.kind(kindOfName(k))] {
				p.Add(r, kindOfName(k), s)
			}
			p.walk(r, x, depth+1)
		}
	case []any:
		for _, x := range v {
			p.walk(r, x, depth+1)
		}
	}
}

// want notes the kinds that spec's requests take: those of its parameters and of
// the properties of its request bodies.
func (p *Pools) want(spec *Spec) {
	p.wanted = map[string]bool{}
	for _, op := range spec.Operations {
		for _, pa := range op.Params {
			p.wanted[p.kind(paramKind(op.Path, pa))] = true
		}
		spec.propertyNames(op.Body, 0, func(name string) { p.wanted[p.kind(kindOfName(name))] = true })
	}
}
