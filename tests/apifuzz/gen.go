package apifuzz

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Fixture returns a valid value of a named schema that random generation would
// rarely hit (working credentials, a payment token the provider knows).
type Fixture func(r *rand.Rand) any

// gen makes values that conform to schemas, one per worker (it is not safe for
// concurrent use; the pools it reads are).
type gen struct {
	r        *rand.Rand
	spec     *Spec
	pools    *Pools
	fixtures map[string]Fixture
}

// value returns a value that conforms to sch. kind names what the value is (a
// parameter's or property's kind), so a harvested value can stand in for it.
func (g *gen) value(sch Schema, kind string, depth int) any {
	sch, name := g.spec.Resolve(sch)
	if f, ok := g.fixtures[name]; ok && g.r.IntN(2) == 0 {
		return f(g.r)
	}
	if c, ok := sch["const"]; ok {
		return c
	}
	if enum, ok := sch["enum"].([]any); ok && len(enum) > 0 {
		return enum[g.r.IntN(len(enum))]
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		if alts, ok := sch[k].([]any); ok && len(alts) > 0 {
			alt, _ := alts[g.r.IntN(len(alts))].(map[string]any)
			return g.value(alt, kind, depth+1)
		}
	}
	switch typeOf(sch) {
	case "string":
		return g.str(sch, kind)
	case "integer":
		return g.integer(sch)
	case "number":
		return float64(g.integer(sch)) + g.r.Float64()/2
	case "boolean":
		return g.r.IntN(2) == 0
	case "array":
		return g.array(sch, kind, depth)
	case "object":
		return g.object(sch, depth)
	case "null":
		return nil
	}
	return g.str(Schema{}, kind)
}

// typeOf returns the schema's type; of a list of types, the first that is not null.
func typeOf(sch Schema) string {
	switch t := sch["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s != "null" {
				return s
			}
		}
	}
	if _, ok := sch["properties"]; ok {
		return "object"
	}
	return ""
}

func num(sch Schema, key string) (float64, bool) {
	f, ok := sch[key].(float64)
	return f, ok
}

func (g *gen) object(sch Schema, depth int) map[string]any {
	out := map[string]any{}
	props, _ := sch["properties"].(map[string]any)
	required := stringsOf(sch["required"])
	for _, name := range sortedKeys(props) {
		if !slices.Contains(required, name) && (depth > 6 || g.r.IntN(2) == 0) {
			continue
		}
		sub, _ := props[name].(map[string]any)
		out[name] = g.value(sub, kindOfName(name), depth+1)
	}
	if extra, ok := sch["additionalProperties"].(map[string]any); ok && depth < 6 {
		for range g.r.IntN(4) {
			out[g.word(1, 12)] = g.value(extra, "", depth+1)
		}
	}
	return out
}

func (g *gen) array(sch Schema, kind string, depth int) []any {
	items, _ := sch["items"].(map[string]any)
	lo, _ := num(sch, "minItems")
	hi, ok := num(sch, "maxItems")
	if !ok || hi > lo+3 || hi < lo {
		hi = lo + 3
	}
	n := int(lo) + g.r.IntN(int(hi-lo)+1)
	if depth > 6 {
		n = int(lo)
	}
	out := make([]any, n)
	for i := range out {
		out[i] = g.value(items, kind, depth+1)
	}
	return out
}

// integer returns an integer in the schema's range, often one of its bounds.
func (g *gen) integer(sch Schema) int64 {
	lo, hasLo := num(sch, "minimum")
	hi, hasHi := num(sch, "maximum")
	if x, ok := num(sch, "exclusiveMinimum"); ok {
		lo, hasLo = x+1, true
	}
	if x, ok := num(sch, "exclusiveMaximum"); ok {
		hi, hasHi = x-1, true
	}
	switch {
	case !hasLo && !hasHi:
		lo, hi = -100, 1000
	case !hasLo:
		lo = math.Max(hi-1000, -1e15)
	case !hasHi:
		hi = math.Min(lo+1000, 1e15)
	}
	switch g.r.IntN(10) {
	case 0, 1:
		return int64(lo)
	case 2, 3:
		return int64(hi)
	case 4:
		if !hasHi { // the largest value the schema allows
			if sch["format"] == "int32" {
				return math.MaxInt32
			}
			return math.MaxInt64
		}
	}
	span := max(hi-lo, 0)
	if span > 1e15 {
		span = 1e15
	}
	return int64(lo) + g.r.Int64N(int64(span)+1)
}

// str returns a string that fits the schema's format, pattern and length: often
// a harvested value of kind, when one fits.
func (g *gen) str(sch Schema, kind string) string {
	minLen, _ := num(sch, "minLength")
	maxLen, ok := num(sch, "maxLength")
	if !ok {
		maxLen = math.Max(minLen, 40)
	}
	pattern, _ := sch["pattern"].(string)
	fits := func(s string) bool {
		n := utf8.RuneCountInString(s)
		return float64(n) >= minLen && float64(n) <= maxLen && (pattern == "" || matches(pattern, s))
	}
	if kind != "" && g.r.IntN(10) < 7 {
		if v, ok := g.pools.Pick(g.r, kind); ok && fits(v) {
			return v
		}
	}
	format, _ := sch["format"].(string)
	for range 8 {
		var s string
		switch {
		case format != "":
			s = g.formatted(format)
		case pattern != "":
			s = g.fromPattern(pattern)
		default:
			hi := max(int(math.Min(maxLen, minLen+24)), int(minLen))
			s = g.text(int(minLen) + g.r.IntN(hi-int(minLen)+1))
		}
		if fits(s) {
			return s
		}
	}
	return g.text(int(minLen))
}

// formatted returns a value of a string format.
func (g *gen) formatted(format string) string {
	switch format {
	case "uuid":
		return g.uuid()
	case "email":
		return g.word(1, 12) + "." + fmt.Sprint(g.r.IntN(1e6)) + "@example.com"
	case "date-time":
		return time.Unix(g.r.Int64N(4e9), 0).UTC().Format(time.RFC3339)
	case "date":
		return time.Unix(g.r.Int64N(4e9), 0).UTC().Format(time.DateOnly)
	case "uri", "url":
		return "https://example.com/" + g.word(1, 20)
	case "int64", "int32":
		return fmt.Sprint(g.r.IntN(1000))
	}
	return g.word(1, 20)
}

func (g *gen) uuid() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// word returns letters and digits, between lo and hi of them.
func (g *gen) word(lo, hi int) string {
	b := make([]byte, lo+g.r.IntN(hi-lo+1))
	for i := range b {
		b[i] = letters[g.r.IntN(len(letters))]
	}
	return string(b)
}

// text returns n characters of printable text, now and then beyond ASCII.
func (g *gen) text(n int) string {
	extra := []rune("  -_.,'é日本€😀Ωß")
	var b strings.Builder
	for range n {
		if g.r.IntN(8) == 0 {
			b.WriteRune(extra[g.r.IntN(len(extra))])
		} else {
			b.WriteByte(letters[g.r.IntN(len(letters))])
		}
	}
	return b.String()
}

var (
	patternsMu sync.Mutex
	patterns   = map[string]*regexp.Regexp{}
	parsed     = map[string]*syntax.Regexp{}
)

func matches(pattern, s string) bool {
	patternsMu.Lock()
	re, ok := patterns[pattern]
	if !ok {
		re, _ = regexp.Compile(pattern)
		patterns[pattern] = re
	}
	patternsMu.Unlock()
	return re == nil || re.MatchString(s)
}

// fromPattern returns a string that the regular expression matches (for the
// patterns APIs use: classes, literals, repetitions, anchors, alternatives).
func (g *gen) fromPattern(pattern string) string {
	patternsMu.Lock()
	re, ok := parsed[pattern]
	if !ok {
		re, _ = syntax.Parse(pattern, syntax.Perl)
		parsed[pattern] = re
	}
	patternsMu.Unlock()
	if re == nil {
		return g.word(1, 10)
	}
	var b strings.Builder
	g.emit(re, &b)
	return b.String()
}

func (g *gen) emit(re *syntax.Regexp, b *strings.Builder) {
	repeat := func(lo, hi int) {
		if hi < 0 || hi > lo+8 {
			hi = lo + 8
		}
		for range lo + g.r.IntN(hi-lo+1) {
			g.emit(re.Sub[0], b)
		}
	}
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		i := 2 * g.r.IntN(len(re.Rune)/2)
		lo, hi := re.Rune[i], min(re.Rune[i+1], re.Rune[i]+200)
		b.WriteRune(lo + rune(g.r.IntN(int(hi-lo)+1)))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte(letters[g.r.IntN(len(letters))])
	case syntax.OpCapture:
		g.emit(re.Sub[0], b)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			g.emit(s, b)
		}
	case syntax.OpAlternate:
		g.emit(re.Sub[g.r.IntN(len(re.Sub))], b)
	case syntax.OpStar:
		repeat(0, 3)
	case syntax.OpPlus:
		repeat(1, 4)
	case syntax.OpQuest:
		repeat(0, 1)
	case syntax.OpRepeat:
		repeat(re.Min, re.Max)
	}
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
