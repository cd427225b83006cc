package switchd_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bannedTime are the package time functions that read the wall clock or
// sleep. Decision code gets time from an injected Clock instead, so the
// simulator runs the production code.
var bannedTime = map[string]bool{
	"Now": true, "Sleep": true, "After": true, "Tick": true, "NewTimer": true,
	"NewTicker": true, "AfterFunc": true, "Since": true, "Until": true,
}

// TestDecisionCodeHasNoWallClock enforces the house rule on policies/ and
// the controller core (not its tests, not the daemon's I/O subpackages).
func TestDecisionCodeHasNoWallClock(t *testing.T) {
	var files []string
	for _, dir := range []string{"policies", "controller", "drivers/simdev"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		timeName := ""
		for _, imp := range file.Imports {
			if imp.Path.Value == `"time"` {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		if timeName == "" {
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == timeName && bannedTime[sel.Sel.Name] {
				t.Errorf("%s: time.%s in decision code: use the injected Clock", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}
