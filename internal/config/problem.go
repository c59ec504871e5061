package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the key at fault, e.g. "policies[0].renew_before" or
	// "connections[1].client_secret"; "" for the file as a whole.
	Path string
	// Object names the list item the key belongs to, e.g.
	// `policies[0] "web"`; "" for top-level keys.
	Object string
	// Line is the line in the file, 0 when unknown (a default, an
	// environment override, or a check across keys).
	Line int
	// Message says what is wrong and how to fix it, naming the key
	// (relative to Object when there is one). It never contains a secret
	// value.
	Message string
}

// String is the problem as one line: `policies[0] "web": renew_before …`.
// Messages of top-level keys name the key themselves.
func (p Problem) String() string {
	if p.Object != "" {
		return p.Object + ": " + p.Message
	}
	return p.Message
}

// ValidationError is every problem of a configuration, reported at once so
// that one edit can fix them all. rotor does not start with any of them.
type ValidationError struct {
	// File is the configuration file, when it was loaded from one.
	File     string
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	if e.File != "" {
		n := "problem"
		if len(e.Problems) != 1 {
			n = "problems"
		}
		lines = append(lines, fmt.Sprintf("configuration %s has %d %s:", e.File, len(e.Problems), n))
	}
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems while a configuration is checked.
type problems struct{ list []Problem }

func (ps *problems) add(p Problem) { ps.list = append(ps.list, p) }

func (ps *problems) addf(path, object string, line int, format string, args ...any) {
	ps.add(Problem{Path: path, Object: object, Line: line, Message: fmt.Sprintf(format, args...)})
}

func lineSrc(line int) string {
	if line == 0 {
		return ""
	}
	return fmt.Sprintf("line %d", line)
}
