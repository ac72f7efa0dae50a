package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
)

var tokenKey = []byte("token-test-key-0123456789abcdef-0123456789")

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTokens(t testing.TB, key []byte, c *clock) *auth.Tokens {
	t.Helper()
	tk, err := auth.NewTokens(key, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// forge signs an arbitrary payload with key as the minter would, so that
// the checks after the signature's can be reached.
func forge(key []byte, payload string) string {
	enc := base64.RawURLEncoding.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte("idgp_" + enc))
	return "idgp_" + enc + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestTokenRoundTripAndExpiry(t *testing.T) {
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tk := newTokens(t, tokenKey, c)
	for _, tc := range []struct {
		typ, value string
		ttl        time.Duration
		want       time.Duration
	}{
		{graph.TypeUserID, "u-1", 0, auth.DefaultTokenTTL},
		{graph.TypeAnonymousID, "anon é \"quoted\"", time.Minute, time.Minute},
		{graph.TypeUserID, "u-2", auth.MaxTokenTTL, auth.MaxTokenTTL},
	} {
		s, exp, err := tk.Mint(tc.typ, tc.value, tc.ttl)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if !exp.Equal(c.t.Add(tc.want)) {
			t.Errorf("%+v: expires %v", tc, exp)
		}
		got, err := tk.Parse(s)
		if err != nil || got.Type != tc.typ || got.Value != tc.value || got.Purpose != auth.PurposePersonalisation {
			t.Errorf("%+v: parsed %+v, %v", tc, got, err)
		}
		// Valid up to the last second of its life, refused from its end on.
		c.t = exp.Add(-time.Second)
		if _, err := tk.Parse(s); err != nil {
			t.Errorf("%+v: a second before expiry: %v", tc, err)
		}
		c.t = exp
		if _, err := tk.Parse(s); graph.ErrorKind(err) != graph.KindUnauthorized || !strings.Contains(err.Error(), "expired") {
			t.Errorf("%+v: at expiry: %v", tc, err)
		}
		c.t = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	}
	a, _, _ := tk.Mint(graph.TypeUserID, "u-1", 0)
	b, _, _ := tk.Mint(graph.TypeUserID, "u-1", 0)
	if a == b {
		t.Error("two tokens minted in the same second are equal")
	}
}

func TestTokenMintRefusesBadInput(t *testing.T) {
	tk := newTokens(t, tokenKey, &clock{time.Now()})
	for _, tc := range []struct {
		typ, value string
		ttl        time.Duration
		field      string
	}{
		{graph.TypeUserID, "u", -time.Minute, "ttl"},
		{graph.TypeUserID, "u", time.Millisecond, "ttl"},
		{graph.TypeUserID, "u", auth.MaxTokenTTL + time.Second, "ttl"},
		{graph.TypeEmail, "a@b.io", 0, "type"},
		{graph.TypeUserID, "", 0, "userId"},
		{graph.TypeAnonymousID, strings.Repeat("x", 513), 0, "anonymousId"},
	} {
		_, _, err := tk.Mint(tc.typ, tc.value, tc.ttl)
		if graph.ErrorKind(err) != graph.KindInvalid || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want an invalid error naming %s", tc, err, tc.field)
		}
	}
	if _, err := auth.NewTokens([]byte("short"), nil); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

// TestTokenRefusesTampering: every change to a token, a token signed with
// another key, and well-signed tokens that say the wrong thing are refused
// as unauthorized.
func TestTokenRefusesTampering(t *testing.T) {
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tk := newTokens(t, tokenKey, c)
	good, _, err := tk.Mint(graph.TypeUserID, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	payload, sig, _ := strings.Cut(strings.TrimPrefix(good, "idgp_"), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	other := newTokens(t, []byte("another-key-0123456789abcdef-0123456789"), c)
	otherTok, _, _ := other.Mint(graph.TypeUserID, "alice", time.Hour)
	exp := c.t.Add(time.Hour).Unix()
	payloadOf := func(m map[string]any) string {
		b, _ := json.Marshal(m)
		return string(b)
	}
	bad := map[string]string{
		"empty":             "",
		"no prefix":         strings.TrimPrefix(good, "idgp_"),
		"a key's prefix":    "idg_" + strings.TrimPrefix(good, "idgp_"),
		"no signature":      "idgp_" + payload,
		"empty signature":   "idgp_" + payload + ".",
		"cut signature":     good[:len(good)-2],
		"padded signature":  good + "=",
		"extra dot":         good + ".x",
		"other key":         otherTok,
		"bound to bob":      "idgp_" + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), "alice", "bob", 1))) + "." + sig,
		"too long":          "idgp_" + strings.Repeat("A", auth.MaxTokenLen),
		"wrong purpose":     forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "export", "e": exp, "n": "x"})),
		"no purpose":        forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "e": exp, "n": "x"})),
		"email binding":     forge(tokenKey, payloadOf(map[string]any{"t": "email", "v": "a@b.io", "p": "personalisation", "e": exp, "n": "x"})),
		"empty value":       forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "", "p": "personalisation", "e": exp, "n": "x"})),
		"unknown field":     forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "personalisation", "e": exp, "n": "x", "role": "admin"})),
		"expired":           forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "personalisation", "e": c.t.Unix() - 1, "n": "x"})),
		"far future":        forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "personalisation", "e": c.t.Add(30 * 24 * time.Hour).Unix(), "n": "x"})),
		"not json":          forge(tokenKey, "alice"),
		"two objects":       forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "personalisation", "e": exp})+"{}"),
		"string expiry":     forge(tokenKey, `{"t":"user_id","v":"alice","p":"personalisation","e":"9999999999"}`),
		"payload not b64":   "idgp_!!!." + sig,
		"flipped payload":   "idgp_" + flipFirst(payload) + "." + sig,
		"flipped signature": "idgp_" + payload + "." + flipFirst(sig),
	}
	for name, s := range bad {
		tok, err := tk.Parse(s)
		if graph.ErrorKind(err) != graph.KindUnauthorized {
			t.Errorf("%s: parsed as %+v, %v; want unauthorized", name, tok, err)
			continue
		}
		if s != "" && len(s) > 20 && strings.Contains(err.Error(), s[5:20]) {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
	if _, err := tk.Parse(good); err != nil {
		t.Fatalf("the good token: %v", err)
	}
	if _, err := tk.Parse(forge(tokenKey, payloadOf(map[string]any{"t": "user_id", "v": "alice", "p": "personalisation", "e": exp}))); err != nil {
		t.Errorf("a well-formed token signed with the key: %v", err)
	}
}

func flipFirst(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestTokenKeyFollowsThePepper(t *testing.T) {
	kr := func(pepper string) *auth.Keyring {
		k, err := auth.NewKeyring(auth.KeyringOptions{Pepper: []byte(pepper)})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a, b, c := kr("pepper-one-0123456789"), kr("pepper-one-0123456789"), kr("pepper-two-0123456789")
	if !hmac.Equal(a.TokenKey(), b.TokenKey()) || hmac.Equal(a.TokenKey(), c.TokenKey()) || len(a.TokenKey()) != 32 {
		t.Error("the token key is not a function of the pepper alone")
	}
	if hmac.Equal(a.TokenKey(), []byte("pepper-one-0123456789")) {
		t.Error("the token key is the pepper")
	}
	legacy, _ := auth.NewKeyring(auth.KeyringOptions{})
	if legacy.TokenKey() != nil {
		t.Error("a keyring without a pepper has a token key")
	}
}

// FuzzParseToken: no input panics or is accepted unless the key signed it.
func FuzzParseToken(f *testing.F) {
	c := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	tk := newTokens(f, tokenKey, c)
	good, _, _ := tk.Mint(graph.TypeUserID, "alice", time.Hour)
	f.Add(good)
	f.Add("idgp_.")
	f.Add("idgp_e30.AAAA")
	f.Add(forge(tokenKey, `{"t":"user_id","v":"x","p":"personalisation","e":1}`))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := tk.Parse(s)
		if err != nil {
			if graph.ErrorKind(err) != graph.KindUnauthorized {
				t.Fatalf("%q: %v is not unauthorized", s, err)
			}
			return
		}
		// Accepted: it must carry the signature of its payload.
		payload, sig, _ := strings.Cut(strings.TrimPrefix(s, "idgp_"), ".")
		if sig == "" {
			t.Fatalf("%q accepted without a signature", s)
		}
		m := hmac.New(sha256.New, tokenKey)
		m.Write([]byte("idgp_" + payload))
		if base64.RawURLEncoding.EncodeToString(m.Sum(nil)) != sig || tok.Purpose != auth.PurposePersonalisation {
			t.Fatalf("%q accepted as %+v", s, tok)
		}
	})
}

var assertionSecret = []byte("shop-backend-shared-secret-0123456789abc")

// TestAssertions: a backend's HS256 assertion names one visitor; every
// other header, signature, audience, binding and lifetime is refused.
func TestAssertions(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(5 * time.Minute).Unix()
	good := auth.SignAssertion(assertionSecret, map[string]any{"userId": "u-1", "aud": auth.AssertionAudience, "exp": exp, "iat": now.Unix()})
	a, err := auth.ParseAssertion(assertionSecret, good, now)
	if err != nil || a.Type != graph.TypeUserID || a.Value != "u-1" || a.Expires.Unix() != exp {
		t.Fatalf("good: %+v, %v", a, err)
	}
	anon := auth.SignAssertion(assertionSecret, map[string]any{"anonymousId": "a-1", "aud": auth.AssertionAudience, "exp": exp})
	if a, err := auth.ParseAssertion(assertionSecret, anon, now); err != nil || a.Type != graph.TypeAnonymousID || a.Value != "a-1" {
		t.Errorf("anonymous: %+v, %v", a, err)
	}
	jwt := func(header, claims string, secret []byte) string {
		body := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(body))
		return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	claims := func(extra string) string {
		return `{"userId":"u-1","aud":"idgraph-personalisation","exp":` + fmt.Sprint(exp) + extra + `}`
	}
	h := `{"alg":"HS256","typ":"JWT"}`
	parts := strings.Split(good, ".")
	bad := map[string]string{
		"empty":            "",
		"two parts":        parts[0] + "." + parts[1],
		"alg none":         parts[0][:0] + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		"alg none signed":  jwt(`{"alg":"none"}`, claims(""), assertionSecret),
		"alg HS512":        jwt(`{"alg":"HS512"}`, claims(""), assertionSecret),
		"typ other":        jwt(`{"alg":"HS256","typ":"at+jwt"}`, claims(""), assertionSecret),
		"header kid":       jwt(`{"alg":"HS256","kid":"x"}`, claims(""), assertionSecret),
		"other secret":     jwt(h, claims(""), []byte("another-secret-0123456789abcdef0123")),
		"claims swapped":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(claims(""), "u-1", "u-2", 1))) + "." + parts[2],
		"no aud":           jwt(h, `{"userId":"u-1","exp":`+fmt.Sprint(exp)+`}`, assertionSecret),
		"other aud":        jwt(h, `{"userId":"u-1","aud":"api","exp":`+fmt.Sprint(exp)+`}`, assertionSecret),
		"no exp":           jwt(h, `{"userId":"u-1","aud":"idgraph-personalisation"}`, assertionSecret),
		"expired":          jwt(h, `{"userId":"u-1","aud":"idgraph-personalisation","exp":`+fmt.Sprint(now.Unix())+`}`, assertionSecret),
		"far future":       jwt(h, `{"userId":"u-1","aud":"idgraph-personalisation","exp":`+fmt.Sprint(now.Add(48*time.Hour).Unix())+`}`, assertionSecret),
		"both identifiers": jwt(h, claims(`,"anonymousId":"a-1"`), assertionSecret),
		"no identifier":    jwt(h, `{"aud":"idgraph-personalisation","exp":`+fmt.Sprint(exp)+`}`, assertionSecret),
		"unknown claim":    jwt(h, claims(`,"role":"admin"`), assertionSecret),
		"email claim":      jwt(h, `{"email":"a@b.io","aud":"idgraph-personalisation","exp":`+fmt.Sprint(exp)+`}`, assertionSecret),
		"too long":         good + strings.Repeat("A", auth.MaxTokenLen),
	}
	for name, s := range bad {
		if a, err := auth.ParseAssertion(assertionSecret, s, now); graph.ErrorKind(err) != graph.KindUnauthorized {
			t.Errorf("%s: %+v, %v; want unauthorized", name, a, err)
		}
	}
}
