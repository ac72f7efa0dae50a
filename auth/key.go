// Package auth holds idgraph's API keys and roles: the key format and its
// parser, the stored record (never the secret), the storage contract every
// backend implements, and the keyring that authenticates a request's key.
//
// A key reads idg_<role>_<id>_<secret><checksum>. The id is public (it
// names the key in lists, audit entries and revocations); the secret is 32
// base62 characters from crypto/rand (190 bits); the checksum, 6 base62
// characters of the CRC-32 of everything before it, rejects a mistyped or
// truncated key before any store lookup. Only HMAC-SHA256(pepper, secret)
// is stored, and the pepper lives outside the data store, so a copy of the
// store (a backup, Neo4j's transaction log, Pebble's WAL) holds nothing
// that signs a request.
package auth

import (
	"crypto/rand"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/idgraph/idgraph/graph"
)

// Role says what a key may do; see Policy and docs/security.md.
type Role string

// Roles, from the least to the most trusted.
const (
	// RoleWrite ingests, and nothing else: it ships in web pages (it is
	// Segment's writeKey), so it is public.
	RoleWrite Role = "write"
	// RoleRead reads profiles, events and the review queue.
	RoleRead Role = "read"
	// RoleSupport looks up customers for support agents (reads; personal
	// fields masked once masking lands, issue 14).
	RoleSupport Role = "support"
	// RoleSteward reads and acts: review decisions, link, split, undo,
	// segment definitions.
	RoleSteward Role = "steward"
	// RoleAdmin does everything, including managing keys.
	RoleAdmin Role = "admin"
	// RoleMint mints personalisation tokens, and nothing else: the
	// customer's backend holds it and hands each visitor a token bound to
	// them (docs/security.md, "Personalisation tokens").
	RoleMint Role = "mint"
)

// RolePersonalisation is the role of a personalisation token's caller. It
// is no key's role (no key can be made of it, ParseRole refuses it): a
// token reads `me`, the one person it is bound to, and nothing else.
const RolePersonalisation Role = "personalisation"

// Roles lists every role, for validation, docs and the role matrix test.
var Roles = []Role{RoleWrite, RoleMint, RoleRead, RoleSupport, RoleSteward, RoleAdmin}

// ParseRole returns the role named s, or an invalid error naming the field.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", graph.FieldErrorf("role", "unknown role: want one of write, mint, read, support, steward, admin")
}

// Lengths of a key's parts, in base62 characters.
const (
	IDLen       = 8
	SecretLen   = 32 // 32 × log2(62) ≈ 190 bits
	checksumLen = 6  // 62^6 > 2^32: any CRC-32 fits
	prefix      = "idg_"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Key is a parsed key. Its String is the secret-bearing form: show it once
// and never log it (LogValue redacts it).
type Key struct {
	Role   Role
	ID     string
	Secret string
}

// String returns the key as a client sends it, checksum included.
func (k Key) String() string {
	body := prefix + string(k.Role) + "_" + k.ID + "_" + k.Secret
	return body + checksum(body)
}

// Public names the key without its secret: idg_<role>_<id>.
func (k Key) Public() string { return prefix + string(k.Role) + "_" + k.ID }

// GoString keeps %#v from printing the secret.
func (k Key) GoString() string { return k.Public() + "_…" }

// Format keeps every fmt verb from printing the secret: only String does.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.Public()+"_…") }

// New returns a key of the role with a random id and secret.
func New(role Role) (Key, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Key{}, fmt.Errorf("new key: %w", err)
	}
	id, err := randomBase62(IDLen)
	if err != nil {
		return Key{}, fmt.Errorf("new key: %w", err)
	}
	secret, err := randomBase62(SecretLen)
	if err != nil {
		return Key{}, fmt.Errorf("new key: %w", err)
	}
	return Key{Role: role, ID: id, Secret: secret}, nil
}

// IsKey says whether s has this scheme's prefix (as opposed to a legacy
// wk_/rk_/sk_ key), without validating it.
func IsKey(s string) bool { return strings.HasPrefix(s, prefix) }

// Parse parses a key and checks its checksum. Its errors are unauthorized
// errors that never quote the key (they reach clients and logs).
func Parse(s string) (Key, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key is not an idgraph key (it should start with %s)", prefix)
	}
	role, rest, ok := strings.Cut(rest, "_")
	if !ok {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key is malformed: no role")
	}
	r, err := ParseRole(role)
	if err != nil {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key is malformed: unknown role")
	}
	if len(rest) != IDLen+1+SecretLen+checksumLen || rest[IDLen] != '_' {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key is malformed: wrong length (mistyped or cut short?)")
	}
	id, secret, sum := rest[:IDLen], rest[IDLen+1:IDLen+1+SecretLen], rest[IDLen+1+SecretLen:]
	if !isBase62(id) || !isBase62(secret) || !isBase62(sum) {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key is malformed: unexpected character")
	}
	if checksum(s[:len(s)-checksumLen]) != sum {
		return Key{}, graph.Errorf(graph.KindUnauthorized, "the key's checksum does not match: it was mistyped or cut short")
	}
	return Key{Role: r, ID: id, Secret: secret}, nil
}

// ValidID reports whether id has the form of a key id.
func ValidID(id string) bool { return len(id) == IDLen && isBase62(id) }

func checksum(body string) string {
	n := uint64(crc32.ChecksumIEEE([]byte(body)))
	var b [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		b[i] = base62[n%62]
		n /= 62
	}
	return string(b[:])
}

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	return true
}

// randomBase62 draws n uniform base62 characters from crypto/rand,
// rejecting bytes ≥ 248 (4 × 62) so that no character is likelier.
func randomBase62(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		for _, c := range buf {
			if c < 248 && len(out) < n {
				out = append(out, base62[c%62])
			}
		}
	}
	return string(out), nil
}
