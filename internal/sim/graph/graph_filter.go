package graph

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// This file is the OData $filter subset Graph's directory objects accept on
// the properties the simulator models. It is a real tokenizer and
// recursive-descent parser (not string matching) because clients build
// filters programmatically, quote values with ” escaping, and combine them
// with and/or; anything outside the subset is refused the way Graph refuses
// it (400 Request_UnsupportedQuery) rather than silently matching everything.
//
// Grammar (keywords and property names are case-insensitive, as in Graph):
//
//	expr    = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "(" expr ")" | cmp | func
//	cmp     = prop "eq" string | prop "in" "(" string { "," string } ")"
//	func    = "startswith" "(" prop "," string ")"
//	string  = "'" { char | "''" } "'"

// maxFilterLen bounds the $filter text; Graph's own URL limit is far below
// what would make parsing expensive, but the parser is fed outside input.
const maxFilterLen = 4096

// maxFilterDepth bounds parenthesis nesting so a hostile filter cannot
// exhaust the stack.
const maxFilterDepth = 32

// FilterError is a $filter the simulator does not support or cannot parse.
// Graph answers both with 400 Request_UnsupportedQuery.
type FilterError struct{ Msg string }

func (e *FilterError) Error() string { return e.Msg }

// filterField reads one filterable property of an object; ok is false when
// the object type has no such property.
type filterField func(name string) (value string, ok bool)

// filterNode is a parsed $filter expression.
type filterNode interface {
	match(get filterField) bool
}

type (
	orNode  struct{ l, r filterNode }
	andNode struct{ l, r filterNode }
	// eqNode is prop eq 'value' (and prop in (...) with several values).
	eqNode struct {
		prop   string
		values []string
	}
	startsWithNode struct{ prop, prefix string }
)

func (n orNode) match(get filterField) bool  { return n.l.match(get) || n.r.match(get) }
func (n andNode) match(get filterField) bool { return n.l.match(get) && n.r.match(get) }

// Directory string comparisons are case-insensitive in Entra (displayName
// eq 'App' matches "app"; GUIDs compare case-insensitively too).
func (n eqNode) match(get filterField) bool {
	v, _ := get(n.prop)
	for _, want := range n.values {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func (n startsWithNode) match(get filterField) bool {
	v, _ := get(n.prop)
	return len(v) >= len(n.prefix) && strings.EqualFold(v[:len(n.prefix)], n.prefix)
}

// Filter is a compiled $filter.
type Filter struct {
	root filterNode
	// props are the canonical names of the properties the filter may use.
	props map[string]string
}

// Match reports whether the object read by get satisfies the filter. A nil
// filter matches everything.
func (f *Filter) Match(get filterField) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(get)
}

// EqualityKey returns (prop, value, true) when the whole filter is a single
// "prop eq 'value'", so callers can answer it from an index instead of a scan.
func (f *Filter) EqualityKey() (prop, value string, ok bool) {
	if f == nil {
		return "", "", false
	}
	if n, isEq := f.root.(eqNode); isEq && len(n.values) == 1 {
		return n.prop, n.values[0], true
	}
	return "", "", false
}

// ParseFilter compiles src. allowed lists the filterable properties with
// their canonical spelling (e.g. "appId"); a property outside it is
// unsupported.
func ParseFilter(src string, allowed ...string) (*Filter, error) {
	if len(src) > maxFilterLen {
		return nil, &FilterError{Msg: "Invalid filter clause: the filter is too long."}
	}
	if !utf8.ValidString(src) {
		return nil, &FilterError{Msg: "Invalid filter clause: the filter is not valid UTF-8."}
	}
	toks, err := lexFilter(src)
	if err != nil {
		return nil, err
	}
	props := make(map[string]string, len(allowed))
	for _, a := range allowed {
		props[strings.ToLower(a)] = a
	}
	p := &filterParser{toks: toks, props: props}
	root, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: syntax error at position %d near '%s'.", t.pos, t.text)}
	}
	return &Filter{root: root, props: props}, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokLParen
	tokRParen
	tokComma
)

type filterTok struct {
	kind tokKind
	text string // identifier text, or the unescaped string value
	pos  int
}

// lexFilter splits src into tokens. String literals use OData quoting: a
// single quote inside a value is written twice.
func lexFilter(src string) ([]filterTok, error) {
	var toks []filterTok
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, filterTok{kind: tokLParen, text: "(", pos: i})
			i++
		case c == ')':
			toks = append(toks, filterTok{kind: tokRParen, text: ")", pos: i})
			i++
		case c == ',':
			toks = append(toks, filterTok{kind: tokComma, text: ",", pos: i})
			i++
		case c == '\'':
			start := i
			i++
			var b strings.Builder
			closed := false
			for i < len(src) {
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(src[i])
				i++
			}
			if !closed {
				return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: unterminated string literal at position %d.", start)}
			}
			toks = append(toks, filterTok{kind: tokString, text: b.String(), pos: start})
		case isIdentByte(c):
			start := i
			for i < len(src) && (isIdentByte(src[i]) || (src[i] >= '0' && src[i] <= '9') || src[i] == '/') {
				i++
			}
			toks = append(toks, filterTok{kind: tokIdent, text: src[start:i], pos: start})
		default:
			return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: unexpected character at position %d.", i)}
		}
	}
	return append(toks, filterTok{kind: tokEOF, pos: len(src)}), nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '@' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

type filterParser struct {
	toks  []filterTok
	i     int
	props map[string]string
}

func (p *filterParser) peek() filterTok { return p.toks[p.i] }

func (p *filterParser) next() filterTok {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *filterParser) keyword(word string) bool {
	t := p.peek()
	if t.kind == tokIdent && strings.EqualFold(t.text, word) {
		p.i++
		return true
	}
	return false
}

func (p *filterParser) expect(kind tokKind, what string) (filterTok, error) {
	t := p.next()
	if t.kind != kind {
		return t, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: expected %s at position %d.", what, t.pos)}
	}
	return t, nil
}

func (p *filterParser) expr(depth int) (filterNode, error) {
	if depth > maxFilterDepth {
		return nil, &FilterError{Msg: "Invalid filter clause: the filter is nested too deeply."}
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = orNode{l, r}
	}
	return l, nil
}

func (p *filterParser) and(depth int) (filterNode, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = andNode{l, r}
	}
	return l, nil
}

func (p *filterParser) unary(depth int) (filterNode, error) {
	t := p.peek()
	switch t.kind {
	case tokLParen:
		p.next()
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, err
		}
		return n, nil
	case tokIdent:
	default:
		return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: expected a property or function at position %d.", t.pos)}
	}
	p.next()
	if strings.EqualFold(t.text, "startswith") && p.peek().kind == tokLParen {
		p.next()
		prop, err := p.property()
		if err != nil {
			return nil, err
		}
		if prop != "displayName" {
			return nil, &FilterError{Msg: fmt.Sprintf("Unsupported Query: startswith is not supported on property '%s'.", prop)}
		}
		if _, err := p.expect(tokComma, "','"); err != nil {
			return nil, err
		}
		s, err := p.expect(tokString, "a string literal")
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, err
		}
		return startsWithNode{prop: prop, prefix: s.text}, nil
	}
	prop, err := p.canonical(t)
	if err != nil {
		return nil, err
	}
	op := p.next()
	if op.kind != tokIdent {
		return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: expected an operator at position %d.", op.pos)}
	}
	switch strings.ToLower(op.text) {
	case "eq":
		s, err := p.expect(tokString, "a string literal")
		if err != nil {
			return nil, err
		}
		return eqNode{prop: prop, values: []string{s.text}}, nil
	case "in":
		if _, err := p.expect(tokLParen, "'('"); err != nil {
			return nil, err
		}
		var vals []string
		for {
			s, err := p.expect(tokString, "a string literal")
			if err != nil {
				return nil, err
			}
			vals = append(vals, s.text)
			if p.peek().kind == tokComma {
				p.next()
				continue
			}
			break
		}
		if _, err := p.expect(tokRParen, "')'"); err != nil {
			return nil, err
		}
		return eqNode{prop: prop, values: vals}, nil
	case "ne", "gt", "ge", "lt", "le", "not", "has", "any", "all", "endswith":
		return nil, &FilterError{Msg: fmt.Sprintf("Unsupported Query: operator '%s' is not supported.", op.text)}
	default:
		return nil, &FilterError{Msg: fmt.Sprintf("Invalid filter clause: unknown operator '%s' at position %d.", op.text, op.pos)}
	}
}

func (p *filterParser) property() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", &FilterError{Msg: fmt.Sprintf("Invalid filter clause: expected a property at position %d.", t.pos)}
	}
	return p.canonical(t)
}

func (p *filterParser) canonical(t filterTok) (string, error) {
	c, ok := p.props[strings.ToLower(t.text)]
	if !ok {
		return "", &FilterError{Msg: fmt.Sprintf("Unsupported Query: filtering on property '%s' is not supported.", t.text)}
	}
	return c, nil
}
