// Package nametmpl holds the one rule every configured name template
// follows (Key Vault secret and object names, Kubernetes Secrets, Vercel
// and GitHub variable names, runbooks, API connections, Azure DevOps and
// Git keys): a plain text/template over the application, with no loops
// and no sub-templates, so that rendering a template from rotor.yaml
// always ends quickly and does what it reads as.
package nametmpl

import (
	"errors"
	"text/template"
	"text/template/parse"
)

// ErrDefines is the error for a template that defines others
// (define/block): a name needs none.
var ErrDefines = errors.New("must not define templates (define/block)")

// Plain reports why t is not a plain name template: it defines other
// templates, loops (range) or calls a template. Nil when it is plain.
func Plain(t *template.Template) error {
	if len(t.Templates()) > 1 {
		return ErrDefines
	}
	if t.Tree == nil {
		return nil
	}
	return NoLoops(t.Tree.Root)
}

// NoLoops walks a parsed template's nodes and refuses range and template
// calls, at any depth of if and with.
func NoLoops(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := NoLoops(c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return errors.Join(NoLoops(n.List), NoLoops(n.ElseList))
	case *parse.WithNode:
		return errors.Join(NoLoops(n.List), NoLoops(n.ElseList))
	case *parse.RangeNode:
		return errors.New("must not use range: a name needs no loop")
	case *parse.TemplateNode:
		return errors.New("must not call templates")
	}
	return nil
}
