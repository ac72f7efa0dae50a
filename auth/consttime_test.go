package auth_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretish names a value that is a secret or derived from one: a key's
// secret or hash, a MAC, a signature, a CSRF token.
var secretish = regexp.MustCompile(`(?i)secret|hash|mac$|^mac|sig|csrf|token`)

// public lists comparisons of values that look secret by name but are
// not: an audit entry's chain hash is a SHA-256 of its public fields.
var public = map[string]bool{"audit.go: e.Hash != e.ComputeHash(…)": true}

// TestSecretsComparedInConstantTime reads the code that checks keys,
// tokens, CSRF tokens and audit MACs: a secret or a value derived from one
// is compared only with hmac.Equal or subtle.ConstantTimeCompare, never
// with == or bytes.Equal, whose time tells how many leading bytes match;
// and the key check itself uses hmac.Equal. (pebble's TestKeyCheckTiming
// measures the result.)
func TestSecretsComparedInConstantTime(t *testing.T) {
	constantTime := map[string]int{}
	for _, dir := range []string{".", "../console", "../audit"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					switch name := callName(n); name {
					case "hmac.Equal", "subtle.ConstantTimeCompare":
						constantTime[filepath.Base(path)]++
					case "bytes.Equal":
						t.Errorf("%s: bytes.Equal: compare secrets with hmac.Equal", fset.Position(n.Pos()))
					}
				case *ast.BinaryExpr:
					cmp := expr(n.X) + " " + n.Op.String() + " " + expr(n.Y)
					if (n.Op == token.EQL || n.Op == token.NEQ) && (secretOperand(n.X) || secretOperand(n.Y)) && !trivial(n.X) && !trivial(n.Y) &&
						!public[filepath.Base(path)+": "+cmp] {
						t.Errorf("%s: %s %s %s compares a secret with %s", fset.Position(n.Pos()), expr(n.X), n.Op, expr(n.Y), n.Op)
					}
				}
				return true
			})
		}
	}
	t.Logf("constant-time comparisons by file: %v", constantTime)
	if constantTime["keyring.go"] == 0 {
		t.Error("keyring.go compares no key in constant time")
	}
}

func callName(c *ast.CallExpr) string {
	if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
		if id, ok := sel.X.(*ast.Ident); ok {
			return id.Name + "." + sel.Sel.Name
		}
	}
	return ""
}

// secretOperand reports whether e names a secret-derived value (its last
// selector or identifier).
func secretOperand(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return secretish.MatchString(e.Name)
	case *ast.SelectorExpr:
		return secretish.MatchString(e.Sel.Name)
	case *ast.CallExpr:
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "string" && len(e.Args) == 1 {
			return secretOperand(e.Args[0]) // a conversion
		}
		return secretOperand(e.Fun)
	}
	return false
}

// trivial reports a comparison with a constant (nil, "", a number, a
// named constant such as a role), which says nothing secret.
func trivial(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return e.Name == "nil" || e.Name == "true" || e.Name == "false"
	case *ast.CallExpr:
		id, ok := e.Fun.(*ast.Ident)
		return ok && id.Name == "len"
	}
	return false
}

func expr(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return expr(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return expr(e.Fun) + "(…)"
	}
	return "…"
}
