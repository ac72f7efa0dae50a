package destinations

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// SecretPrefix starts every signing secret (Standard Webhooks' format:
// whsec_ and the base64 of the key bytes).
const SecretPrefix = "whsec_"

// secretBytes is a new secret's key length: Standard Webhooks asks for
// 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a new random signing secret.
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret returns a secret's key bytes, refusing a malformed or weak
// one.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, graph.FieldErrorf("secret", "a signing secret starts with %s", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, graph.FieldErrorf("secret", "a signing secret is %s and base64: %v", SecretPrefix, err)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, graph.FieldErrorf("secret", "a signing secret holds 24 to 64 bytes, not %d", len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a message: "v1,"
// and the base64 of HMAC-SHA256(key, id.timestamp.body).
func Sign(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sealer encrypts signing secrets for storage with AES-256-GCM under a key
// derived from the pepper, which lives outside the store: a copy of the
// store alone (a backup, a Neo4j dump) cannot sign. The destination's id
// is the additional data, so a sealed secret moved to another destination
// does not open.
type Sealer struct{ aead cipher.AEAD }

// NewSealer derives the sealing key from the pepper.
func NewSealer(pepper []byte) (*Sealer, error) {
	if len(pepper) < 16 {
		return nil, fmt.Errorf("destinations: sealer: the pepper is too short")
	}
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("idgraph destination secrets v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("destinations: sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("destinations: sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts a secret for the destination id.
func (s *Sealer) Seal(id, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(id))
}

// Open decrypts a destination's sealed signing secret and returns its key
// bytes.
func (s *Sealer) Open(id string, sealed []byte) ([]byte, error) {
	secret, err := s.OpenText(id, sealed)
	if err != nil {
		return nil, err
	}
	return ParseSecret(secret)
}

// OpenText decrypts a destination's sealed secret as it was sealed (a
// forwarder's write key is not a signing secret).
func (s *Sealer) OpenText(id string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", fmt.Errorf("destinations: destination %s: sealed secret too short", id)
	}
	secret, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("destinations: destination %s: the secret does not open (another pepper?): %w", id, err)
	}
	return string(secret), nil
}
