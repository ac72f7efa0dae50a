package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Personalisation tokens (docs/security.md, "Personalisation tokens"): a
// short-lived credential bound to one visitor, minted by the customer's
// backend with a mint key and handed to the visitor's browser, which reads
// that visitor's own segments and computed traits with it (GraphQL `me`).
//
// A token reads idgp_<payload>.<mac>: the payload is the base64url (no
// padding) of a small JSON object, the mac the base64url of
// HMAC-SHA256(key, "idgp_"+payload), the key derived from the pepper
// (Keyring.TokenKey). The mac is checked, in constant time, before the
// payload is decoded: a token the server did not sign is never parsed.

// PurposePersonalisation is the only purpose a token may carry.
const PurposePersonalisation = "personalisation"

// Token lifetimes.
const (
	DefaultTokenTTL = 15 * time.Minute
	MaxTokenTTL     = 24 * time.Hour
	// MaxTokenLen bounds what ParseToken reads: a token is far shorter.
	MaxTokenLen = 2048
	tokenPrefix = "idgp_"
)

// Token is what a personalisation token says: who it is bound to, until
// when, for what.
type Token struct {
	// Type is the bound identifier's type: user_id or anonymous_id.
	Type string `json:"t"`
	// Value is the identifier's value, as the customer's backend sent it.
	Value   string `json:"v"`
	Purpose string `json:"p"`
	// Expires is the end of its life, in Unix seconds.
	Expires int64 `json:"e"`
	// Nonce makes two tokens minted in the same second differ.
	Nonce string `json:"n"`
}

// IsToken says whether s has a token's prefix, without validating it.
func IsToken(s string) bool { return strings.HasPrefix(s, tokenPrefix) }

// TokenTypes are the identifier types a token may be bound to.
var TokenTypes = []string{graph.TypeUserID, graph.TypeAnonymousID}

// Tokens mints and checks personalisation tokens under one key.
type Tokens struct {
	key []byte
	now func() time.Time
}

// NewTokens returns a minter and checker signing with key (at least 32
// bytes); now is the clock (nil: time.Now).
func NewTokens(key []byte, now func() time.Time) (*Tokens, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("tokens: the key must be at least 32 bytes, not %d", len(key))
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{key: bytes.Clone(key), now: now}, nil
}

// Mint returns a token bound to the identifier for ttl (0: the default),
// and when it expires. Bad input names the field (userId/anonymousId, ttl).
func (t *Tokens) Mint(typ, value string, ttl time.Duration) (string, time.Time, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > MaxTokenTTL {
		return "", time.Time{}, graph.FieldErrorf("ttl", "must be between 1 s and %s, not %s", MaxTokenTTL, ttl)
	}
	field := map[string]string{graph.TypeUserID: "userId", graph.TypeAnonymousID: "anonymousId"}[typ]
	if field == "" {
		return "", time.Time{}, graph.FieldErrorf("type", "a token binds a user_id or an anonymous_id, not %q", typ)
	}
	if value == "" || len(value) > 512 {
		return "", time.Time{}, graph.FieldErrorf(field, "must be 1 to 512 bytes")
	}
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return "", time.Time{}, fmt.Errorf("mint token: %w", err)
	}
	exp := t.now().Add(ttl).Truncate(time.Second)
	payload, err := json.Marshal(Token{Type: typ, Value: value, Purpose: PurposePersonalisation, Expires: exp.Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce)})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("mint token: %w", err)
	}
	return t.sign(base64.RawURLEncoding.EncodeToString(payload)), exp.UTC(), nil
}

// sign returns the token of an encoded payload.
func (t *Tokens) sign(payload string) string {
	return tokenPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(t.mac(payload))
}

func (t *Tokens) mac(payload string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(tokenPrefix + payload))
	return m.Sum(nil)
}

// errBadToken is the one answer to a token that is not this server's:
// which check failed is not said (it would help forge one).
var errBadToken = graph.Errorf(graph.KindUnauthorized, "the personalisation token is not valid")

// Parse checks a token (its signature, then its purpose, binding and
// expiry) and returns what it says. Its errors are unauthorized errors
// that never quote the token.
func (t *Tokens) Parse(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok || len(s) > MaxTokenLen {
		return Token{}, errBadToken
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return Token{}, errBadToken
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, t.mac(payload)) {
		return Token{}, errBadToken
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(payload)
	if err != nil {
		return Token{}, errBadToken
	}
	var tok Token
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tok); err != nil || dec.More() {
		return Token{}, errBadToken
	}
	if tok.Purpose != PurposePersonalisation {
		return Token{}, graph.Errorf(graph.KindUnauthorized, "the token is not for personalisation")
	}
	if tok.Type != graph.TypeUserID && tok.Type != graph.TypeAnonymousID || tok.Value == "" {
		return Token{}, errBadToken
	}
	now := t.now()
	if now.Unix() >= tok.Expires {
		return Token{}, graph.Errorf(graph.KindUnauthorized, "the personalisation token has expired: mint a new one")
	}
	if tok.Expires-now.Unix() > int64(MaxTokenTTL/time.Second)+60 {
		return Token{}, errBadToken // no minter signs that far ahead
	}
	return tok, nil
}

// TokenKey derives the key that signs personalisation tokens from the
// pepper, so that every process sharing the pepper accepts the tokens any
// of them mints, and a copy of the data store signs nothing. It returns
// nil for a keyring without a pepper (legacy keys only).
func (k *Keyring) TokenKey() []byte {
	if len(k.pepper) == 0 {
		return nil
	}
	m := hmac.New(sha256.New, k.pepper)
	m.Write([]byte("idgraph personalisation token key v1"))
	return m.Sum(nil)
}

// Assertions: the customer's backend may sign, with a secret it shares
// with idgraph, a statement of who the visitor is (a JWT, HS256), which
// the visitor's browser exchanges for a token without the backend calling
// idgraph (docs/security.md, "Personalisation tokens").

// AssertionAudience is the `aud` an assertion must carry, so that a JWT
// the backend signs for anything else is never taken for one.
const AssertionAudience = "idgraph-personalisation"

// Assertion is what an assertion says.
type Assertion struct {
	// Type and Value are the visitor's identifier: user_id or anonymous_id.
	Type, Value string
	// Expires ends the assertion's life, and so that of the token
	// exchanged for it.
	Expires time.Time
}

type assertionClaims struct {
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	Exp         *int64 `json:"exp"`
	Iat         *int64 `json:"iat"`
	Aud         string `json:"aud"`
}

// errBadAssertion is the one answer to an assertion that is not valid.
var errBadAssertion = graph.Errorf(graph.KindUnauthorized, "the assertion is not valid")

// ParseAssertion checks an assertion: a compact JWT whose header is
// {"alg":"HS256"} (and optionally "typ":"JWT"), signed with secret, whose
// claims name the visitor by userId or anonymousId (one), carry aud
// AssertionAudience and an exp in the future, at most MaxTokenTTL ahead.
// Its errors are unauthorized errors that never quote the assertion.
func ParseAssertion(secret []byte, s string, now time.Time) (Assertion, error) {
	if len(s) > MaxTokenLen {
		return Assertion{}, errBadAssertion
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Assertion{}, errBadAssertion
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		return Assertion{}, errBadAssertion
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodeSegment(parts[0], &header); err != nil || header.Alg != "HS256" || header.Typ != "" && header.Typ != "JWT" {
		return Assertion{}, errBadAssertion
	}
	var c assertionClaims
	if err := decodeSegment(parts[1], &c); err != nil || c.Aud != AssertionAudience || c.Exp == nil {
		return Assertion{}, errBadAssertion
	}
	a := Assertion{Type: graph.TypeUserID, Value: c.UserID, Expires: time.Unix(*c.Exp, 0).UTC()}
	if c.UserID == "" {
		a.Type, a.Value = graph.TypeAnonymousID, c.AnonymousID
	}
	switch {
	case a.Value == "" || c.UserID != "" && c.AnonymousID != "":
		return Assertion{}, errBadAssertion
	case !now.Before(a.Expires):
		return Assertion{}, graph.Errorf(graph.KindUnauthorized, "the assertion has expired")
	case a.Expires.Sub(now) > MaxTokenTTL:
		return Assertion{}, errBadAssertion
	}
	return a, nil
}

// decodeSegment decodes one base64url JSON part of a JWT, refusing fields
// it does not know.
func decodeSegment(part string, v any) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(part)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// SignAssertion signs claims as the customer's backend would (tests, and
// a reference for backends): a compact HS256 JWT.
func SignAssertion(secret []byte, claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	c, _ := json.Marshal(claims)
	body := h + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
