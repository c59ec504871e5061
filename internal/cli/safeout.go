package cli

import (
	"io"
	"unicode/utf8"
)

// safeWriter drops terminal control characters from what the CLI prints.
// Application and credential display names come from the tenant, where
// anyone who may register an application can put ANSI escape sequences in
// one; printed raw they could rewrite the operator's screen. Newlines, tabs
// and carriage returns (progress lines) pass; JSON output is unaffected,
// since encoding/json already escapes control characters.
type safeWriter struct{ w io.Writer }

func (s safeWriter) Write(p []byte) (int, error) {
	clean := p
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if isControl(r) && size > 0 {
			clean = make([]byte, 0, len(p))
			for j := 0; j < len(p); {
				r, n := utf8.DecodeRune(p[j:])
				if isControl(r) {
					clean = append(clean, '?')
				} else {
					clean = append(clean, p[j:j+n]...)
				}
				j += n
			}
			break
		}
		i += size
	}
	if _, err := s.w.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}

func isControl(r rune) bool {
	switch {
	case r == '\n' || r == '\t' || r == '\r':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	}
	return false
}
