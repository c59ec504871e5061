package adogit

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file edits a YAML file the way a person would in an editor: it
// finds a node with yaml.v3 (which gives line and column) and replaces the
// node's bytes only, so every comment, anchor, quote and odd space of the
// rest of the file stays as it was, byte for byte. Re-marshalling the
// parsed document would lose comments' places, reflow strings and rewrite
// anchors (ADR 0029).

// PathError is a YAML key path that cannot be written as asked: a missing
// parent mapping, a value that is not a scalar, a block scalar, an alias.
// It is permanent: the file must be changed by a person first.
type PathError struct {
	Path, File, Msg string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("%s in %s: %s", e.Path, e.File, e.Msg)
}

// Permanent is true.
func (e *PathError) Permanent() bool { return true }

// yamlDoc is a parsed file with what is needed to find bytes.
type yamlDoc struct {
	src       []byte
	root      *yaml.Node
	lineStart []int
}

func parseYAML(src []byte) (*yamlDoc, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(src, &n); err != nil {
		// yaml.v3's message names a line and the problem, not file content.
		return nil, fmt.Errorf("is not YAML rotor can edit: %v", err)
	}
	d := &yamlDoc{src: src, lineStart: []int{0}}
	for i, b := range src {
		if b == '\n' {
			d.lineStart = append(d.lineStart, i+1)
		}
	}
	switch {
	case n.Kind == 0 || len(n.Content) == 0:
		return nil, errors.New("is empty: rotor edits a YAML mapping")
	case n.Content[0].Kind != yaml.MappingNode || n.Content[0].Style&yaml.FlowStyle != 0:
		return nil, errors.New("is not a block mapping at the top: rotor edits keys of a YAML mapping")
	}
	d.root = n.Content[0]
	return d, nil
}

// offset is the byte offset of yaml.v3's 1-based line and column (which
// counts characters).
func (d *yamlDoc) offset(line, col int) int {
	if line < 1 || line > len(d.lineStart) {
		return len(d.src)
	}
	off := d.lineStart[line-1]
	for i := 1; i < col && off < len(d.src); i++ {
		_, size := utf8.DecodeRune(d.src[off:])
		off += size
	}
	return off
}

// located is a key path's place: its parent mapping, and its key and
// value nodes when the key exists.
type located struct {
	parent     *yaml.Node
	leaf       string
	key, value *yaml.Node
}

// lookup walks a dotted key path. A missing last key is not an error (it
// can be created in its parent); a missing or non-mapping parent is.
func (d *yamlDoc) lookup(path, file string) (located, error) {
	segs := strings.Split(path, ".")
	cur := d.root
	for i, seg := range segs {
		if cur.Kind == yaml.AliasNode {
			return located{}, &PathError{path, file, fmt.Sprintf("%s is an alias; rotor does not write through aliases", strings.Join(segs[:i], "."))}
		}
		if cur.Kind != yaml.MappingNode {
			return located{}, &PathError{path, file, fmt.Sprintf("%s is not a mapping, so it cannot hold %s", strings.Join(segs[:i], "."), seg)}
		}
		var k, v *yaml.Node
		for j := 0; j+1 < len(cur.Content); j += 2 {
			if cur.Content[j].Value == seg {
				k, v = cur.Content[j], cur.Content[j+1]
			}
		}
		if i == len(segs)-1 {
			return located{parent: cur, leaf: seg, key: k, value: v}, nil
		}
		if v == nil {
			return located{}, &PathError{path, file, fmt.Sprintf("its parent %s does not exist; rotor creates only the last key, in a mapping that exists", strings.Join(segs[:i+1], "."))}
		}
		cur = v
	}
	panic("unreachable")
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// span is the byte range of a value node that rotor may replace: a
// scalar on one line (plain, quoted, or an implicit null), or a flow
// mapping or sequence. Anchors and tags before it are kept.
func (d *yamlDoc) span(n *yaml.Node, path, file string) (int, int, error) {
	start := d.offset(n.Line, n.Column)
	// Keep "&anchor " and "!tag " in front of the value.
	for start < len(d.src) && (d.src[start] == '&' || d.src[start] == '!') {
		for start < len(d.src) && d.src[start] != ' ' && d.src[start] != '\n' {
			start++
		}
		for start < len(d.src) && d.src[start] == ' ' {
			start++
		}
	}
	fail := func(msg string) (int, int, error) { return 0, 0, &PathError{path, file, msg} }
	switch {
	case n.Kind == yaml.AliasNode:
		return fail("is an alias; rotor does not write through aliases")
	case n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return fail("is a block scalar (| or >); make it a quoted string on one line")
	case n.Kind == yaml.ScalarNode && n.Style&yaml.DoubleQuotedStyle != 0:
		for i := start + 1; i < len(d.src); i++ {
			switch d.src[i] {
			case '\\':
				i++
			case '"':
				return start, i + 1, nil
			}
		}
	case n.Kind == yaml.ScalarNode && n.Style&yaml.SingleQuotedStyle != 0:
		for i := start + 1; i < len(d.src); i++ {
			if d.src[i] == '\'' {
				if i+1 < len(d.src) && d.src[i+1] == '\'' {
					i++
					continue
				}
				return start, i + 1, nil
			}
		}
	case n.Kind == yaml.ScalarNode && n.Value == "" && n.Tag == "!!null":
		// "key:" with nothing after it: yaml.v3 puts the node right after
		// the colon; the value is inserted there.
		return start, start, nil
	case n.Kind == yaml.ScalarNode:
		if end := start + len(n.Value); end <= len(d.src) && string(d.src[start:end]) == n.Value {
			return start, end, nil
		}
		return fail("is a plain scalar over several lines; make it a quoted string on one line")
	case (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && n.Style&yaml.FlowStyle != 0:
		depth := 0
		for i := start; i < len(d.src); i++ {
			switch c := d.src[i]; c {
			case '"', '\'':
				for j := i + 1; j < len(d.src); j++ {
					if c == '"' && d.src[j] == '\\' {
						j++
						continue
					}
					if d.src[j] == c {
						i = j
						break
					}
				}
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return start, i + 1, nil
				}
			}
		}
	default:
		return fail("is a block mapping or sequence; rotor writes a scalar or a one-line flow mapping there")
	}
	return fail("could not be located in the file's bytes")
}

// insertion adds "leaf: text" to the block mapping parent: on a line of
// its own after the mapping's last entry when that ends on one line, else
// before its first entry.
func (d *yamlDoc) insertion(l located, path, file, text string) (edit, error) {
	p := l.parent
	if p.Style&yaml.FlowStyle != 0 || len(p.Content) < 2 {
		return edit{}, &PathError{path, file, "does not exist, and its parent is a flow mapping ({…}) or empty; add the key by hand (an empty string will do)"}
	}
	indent := strings.Repeat(" ", p.Content[0].Column-1)
	eol := "\n"
	if bytes.Contains(d.src, []byte("\r\n")) {
		eol = "\r\n" // a file with Windows line ends keeps them
	}
	line := indent + l.leaf + ": " + text + eol
	lastKey, lastVal := p.Content[len(p.Content)-2], p.Content[len(p.Content)-1]
	if _, end, err := d.span(lastVal, path, file); err == nil && lastVal.Line == lastKey.Line {
		nl := bytes.IndexByte(d.src[end:], '\n')
		if nl < 0 {
			return edit{start: len(d.src), end: len(d.src), text: eol + line}, nil
		}
		at := end + nl + 1
		return edit{start: at, end: at, text: line}, nil
	}
	first := p.Content[0]
	ls := d.lineStart[first.Line-1]
	if strings.TrimLeft(string(d.src[ls:d.offset(first.Line, first.Column)]), " ") != "" {
		return edit{}, &PathError{path, file, "does not exist, and rotor cannot tell where to add it in its parent; add the key by hand (an empty string will do)"}
	}
	return edit{start: ls, end: ls, text: line}, nil
}

// apply makes the new file from non-overlapping edits.
func apply(src []byte, edits []edit) ([]byte, error) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var b bytes.Buffer
	at := 0
	for _, e := range edits {
		if e.start < at {
			return nil, errors.New("the secret's key and the metadata key overlap")
		}
		b.Write(src[at:e.start])
		b.WriteString(e.text)
		at = e.end
	}
	b.Write(src[at:])
	return b.Bytes(), nil
}

// quoteLike writes s as a YAML scalar in the style of the node it
// replaces: plain stays plain where s is safe plain, single quotes stay
// single; everything else is double-quoted.
func quoteLike(n *yaml.Node, s string) string {
	switch {
	case n != nil && n.Style&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	case n != nil && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && n.Value != "" && safePlain(s):
		return s
	}
	return doubleQuote(s)
}

// doubleQuote is a YAML double-quoted scalar; Go's escapes of printable
// ASCII are YAML's too.
func doubleQuote(s string) string { return strconv.QuoteToASCII(s) }

func safePlain(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return !(s[0] == '-' || s[0] == '.')
}

// scalarText is a value node's string value, and whether it is a scalar
// holding something (an empty string and null hold nothing).
func scalarText(n *yaml.Node) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", false
	}
	return n.Value, n.Value != ""
}
