// Package diskscan finds bytes in the files under a directory, for tests
// that prove a secret never reaches, or has left, a store's disk.
package diskscan

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Holding returns the files under dir whose raw bytes contain needle,
// and how many files and bytes it read.
func Holding(t testing.TB, dir string, needle []byte) (paths []string, files, read int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		read += len(data)
		if bytes.Contains(data, needle) {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths, files, read
}
