package cli

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

func TestZZProbe(t *testing.T) {
	for _, a := range [][]string{{"nosuch"}, {"sync", "extra"}, {"apps", "nosuch"}, {"apps", "list", "--bogus"}, {"explain"}, {"explain", "--output", "yaml", "x"}, {"apps", "list", "-o", "yaml"}, {"runs", "show"}, {"rotat"}, {}, {"sync", "-c", "/nonexistent/rotor.yaml"}} {
		var o, e bytes.Buffer
		code := Execute(context.Background(), a, &o, &e)
		fmt.Printf("=== %v -> %d\nstdout: %.300q\nstderr: %q\n", a, code, o.String(), e.String())
	}
}
