package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadPepper returns the pepper from path, creating the file (mode 0600,
// 32 random bytes in hex) when it does not exist. The pepper must live
// outside the data store: a copy of the store alone then cannot check a
// guessed secret. A file readable by others is refused.
func LoadPepper(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createPepper(path); err != nil {
			return nil, fmt.Errorf("pepper: %w", err)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("pepper: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pepper: %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	return ParsePepper(string(b))
}

// createPepper writes a new pepper to a temporary file and links it into
// place, so that processes starting together never read a half-written
// file: the first link wins and the others read its pepper.
func createPepper(path string) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".pepper-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// ParsePepper decodes a pepper given as hex (IDGRAPH_PEPPER).
func ParsePepper(s string) ([]byte, error) {
	p, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("pepper: not hex: %w", err)
	}
	if len(p) < 16 {
		return nil, fmt.Errorf("pepper: %d bytes, want at least 16", len(p))
	}
	return p, nil
}
