package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize is the largest configuration rotor reads. A rotor.yaml is a
// few KiB of settings; anything near a mebibyte is the wrong file (a log,
// a binary, /dev/zero) or an attempt to make parsing expensive, and is
// refused before it is parsed.
const MaxFileSize = 1 << 20

// maxStructureReports caps how many anchors, aliases and merge keys are
// listed one by one: a file made of them would otherwise produce a
// problem list as large as itself.
const maxStructureReports = 20

// tooLarge is the problem of a configuration over MaxFileSize; size is
// what is known of its length.
func tooLarge(ps *problems, size string) {
	ps.addf("", "", 0, "the configuration is %s, over the limit of 1 MiB: rotor.yaml holds settings only and is a few KiB; check that this is the right file", size)
}

// readDocument reads the one YAML document of the configuration into a
// node tree. rotor's configuration is one document: a second one (after
// "---") is reported, since its keys would otherwise be silently ignored.
// A trailing "---" with nothing after it is allowed. It returns nil and
// false when the text is not YAML; nil and true when it is empty.
func readDocument(data []byte, ps *problems) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		ps.addf("", "", 0, "the configuration is not valid YAML: %v", err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		ps.addf("", "", 0, "the configuration is not valid YAML after its first document: %v", err)
	case emptyDocument(&next) && errors.Is(dec.Decode(&yaml.Node{}), io.EOF):
		// "---" at the very end: nothing follows.
	default:
		ps.addf("", "", next.Line, "a second YAML document starts at line %d (after ---): rotor reads one document, so its keys would be ignored; remove the --- and move the keys into the first document", next.Line)
	}
	if len(doc.Content) == 0 || emptyDocument(&doc) {
		return nil, true
	}
	return doc.Content[0], true
}

// emptyDocument reports whether a document node holds nothing (a bare
// "---").
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return len(doc.Content) == 1 && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == "" && n.Anchor == ""
}

// checkPlainData reports every anchor (&a), alias (*a) and merge key (<<)
// in the tree, with its line. rotor's configuration is plain data: these
// make a value mean something written elsewhere, environment overrides and
// messages could no longer name one place, and aliases allow the
// exponential expansion known as "billion laughs". It does not follow
// aliases, so it runs in time linear in the file. It returns whether the
// tree is plain.
func checkPlainData(root *yaml.Node, ps *problems) bool {
	found := 0
	report := func(path string, line int, what, fix string) {
		found++
		if found <= maxStructureReports {
			ps.addf(path, "", line, "%s %s: rotor.yaml is plain data, without anchors, aliases or merge keys; %s", what, where(path, line), fix)
		}
	}
	type item struct {
		n    *yaml.Node
		path string
	}
	// An explicit stack: the tree may be as deep as the file is long.
	stack := []item{{root, ""}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		if n.Anchor != "" {
			report(it.path, n.Line, "anchor &"+n.Anchor, "remove &"+n.Anchor+" and write the value out wherever it is used")
		}
		switch n.Kind {
		case yaml.AliasNode:
			report(it.path, n.Line, "alias *"+n.Value, "write the value out in place of *"+n.Value)
		case yaml.SequenceNode:
			for i := len(n.Content) - 1; i >= 0; i-- {
				stack = append(stack, item{n.Content[i], fmt.Sprintf("%s[%d]", it.path, i)})
			}
		case yaml.MappingNode:
			for i := len(n.Content) - 2; i >= 0; i -= 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.ShortTag() == "!!merge" {
					// One message for the merge, whatever it merges.
					report(it.path, k.Line, "merge key <<", "write the keys it merges out in this map")
					continue
				}
				child := joinPath(it.path, k.Value)
				if k.Kind != yaml.ScalarNode {
					child = joinPath(it.path, "?")
				}
				stack = append(stack, item{v, child}, item{k, child})
			}
		}
	}
	if found > maxStructureReports {
		ps.addf("", "", 0, "… and %d more anchors, aliases and merge keys", found-maxStructureReports)
	}
	return found == 0
}

// where names a place in the file for a message: "in connections[0]
// (line 4)".
func where(path string, line int) string {
	var b strings.Builder
	if path == "" {
		b.WriteString("at the top level")
	} else {
		b.WriteString("in " + path)
	}
	fmt.Fprintf(&b, " (line %d)", line)
	return b.String()
}
