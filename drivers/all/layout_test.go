package all

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// folderOf maps a driver's YAML name to its folder under drivers/.
var folderOf = map[string]string{"sim": "simdev", "http": "httpexec", "mqtt": "mqttagent"}

// TestOneLinePerDriver: adding a driver is adding one line to the table
// (the per-driver glue lives in the driver's own package).
func TestOneLinePerDriver(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "all.go", nil, 0)
	require.NoError(t, err)
	var lit *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && vs.Names[0].Name == "table" {
			lit = vs.Values[0].(*ast.CompositeLit)
		}
		return lit == nil
	})
	require.NotNil(t, lit, "no table in all.go")
	require.Len(t, lit.Elts, len(table))
	for _, e := range lit.Elts {
		kv := e.(*ast.KeyValueExpr)
		name, err := strconv.Unquote(kv.Key.(*ast.BasicLit).Value)
		require.NoError(t, err)
		from, to := fset.Position(kv.Pos()).Line, fset.Position(kv.End()).Line
		require.Equal(t, from, to, "driver %s takes lines %d-%d of the table: one line each", name, from, to)
	}
}

// TestDriverFolders: every driver is one folder with its code, a sample
// settings block (validated by TestSamplesValidate), a README that gives
// the firmware or versions written against and the transition times, and
// testdata/.
func TestDriverFolders(t *testing.T) {
	versions := regexp.MustCompile(`(?i)firmware|version|written against`)
	transitions := regexp.MustCompile(`(?i)transition`)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			dir := name
			if d, ok := folderOf[name]; ok {
				dir = d
			}
			dir = filepath.Join("..", dir)
			goFiles, err := filepath.Glob(filepath.Join(dir, "*.go"))
			require.NoError(t, err)
			require.NotEmpty(t, goFiles, "%s: no code", dir)
			_, err = os.Stat(filepath.Join(dir, "sample.yaml"))
			require.NoError(t, err, "%s: no sample settings block", dir)
			readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
			require.NoError(t, err, "%s: no README", dir)
			require.Regexp(t, versions, string(readme), "%s/README.md: which firmware or versions it was written against", dir)
			require.Regexp(t, transitions, string(readme), "%s/README.md: transition times", dir)
			td, err := os.ReadDir(filepath.Join(dir, "testdata"))
			require.NoError(t, err, "%s: no testdata/", dir)
			require.NotEmpty(t, td, "%s/testdata is empty", dir)
		})
	}
}
