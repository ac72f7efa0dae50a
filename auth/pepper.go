package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LoadPepper returns the pepper from path, creating the file (mode 0600,
// 32 random bytes in hex) when it does not exist. The pepper must live
// outside the data store: a copy of the store alone then cannot check a
// guessed secret. A file readable by others is refused.
func LoadPepper(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("pepper: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadPepper(path) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("pepper: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("pepper: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("pepper: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("pepper: %w", err)
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pepper: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pepper: %s is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	return ParsePepper(string(b))
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
