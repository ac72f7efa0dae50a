package schema_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates the schema in a copy of the module
// and fails when the checked-in code differs: run go generate ./... .
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerates the schema")
	}
	root, _ := filepath.Abs("..")
	tmp := t.TempDir()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "target", "idgraph-data":
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(tmp, rel), 0o755)
		}
		if !strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, ".graphqls") && !strings.HasSuffix(path, ".yml") && d.Name() != "go.mod" && d.Name() != "go.sum" && d.Name() != "segment_model.json" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "gqlgen", "generate", "--config", "gqlgen.yml")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gqlgen generate: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(root, "resolver", "*.resolvers.go"))
	files = append(files, filepath.Join(root, "schema", "generated.go"), filepath.Join(root, "schema", "models_gen.go"))
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(tmp, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run go generate ./...", rel)
		}
	}
}
