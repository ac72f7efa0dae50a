// Package collect decodes Segment-spec tracking messages (identify, track,
// page, screen, group, alias, batch) into observations of the identity graph.
package collect

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	json "github.com/segmentio/encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Types are the message types a batch may hold.
var Types = map[string]bool{"identify": true, "track": true, "page": true, "screen": true, "group": true, "alias": true}

// MaxMessageIdentifiers bounds the identifiers one message may carry: each
// pair becomes an edge, so the count must stay small.
const MaxMessageIdentifiers = 20

// Message is the wire form of one message.
type Message struct {
	Type              string          `json:"type"`
	MessageID         string          `json:"messageId"`
	UserID            json.RawMessage `json:"userId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	PreviousID        json.RawMessage `json:"previousId"`
	GroupID           json.RawMessage `json:"groupId"`
	Event             string          `json:"event"`
	Name              string          `json:"name"`
	Category          string          `json:"category"`
	Properties        json.RawMessage `json:"properties"`
	Traits            json.RawMessage `json:"traits"`
	Context           json.RawMessage `json:"context"`
	Integrations      json.RawMessage `json:"integrations"`
	Timestamp         string          `json:"timestamp"`
	OriginalTimestamp string          `json:"originalTimestamp"`
	SentAt            string          `json:"sentAt"`
	WriteKey          string          `json:"writeKey"`
}

type msgContext struct {
	Device struct {
		ID            json.RawMessage `json:"id"`
		AdvertisingID json.RawMessage `json:"advertisingId"`
	} `json:"device"`
	Traits      map[string]any `json:"traits"`
	ExternalIDs []struct {
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
	} `json:"externalIds"`
}

// Batch is the wire form of a /v1/batch call.
type Batch struct {
	Batch    []json.RawMessage `json:"batch"`
	SentAt   string            `json:"sentAt"`
	Context  json.RawMessage   `json:"context"`
	WriteKey string            `json:"writeKey"`
}

// Decoder turns messages into observations.
type Decoder struct {
	Normalizer *graph.Normalizer
	// Source names where messages come from (the write key's source).
	Source string
}

// Decoded is one decoded message.
type Decoded struct {
	Observation *graph.Observation
	WriteKey    string
	// Rejected are identifier values that were left out, with the reason.
	Rejected []graph.RejectedValue
}

// Unmarshal decodes JSON into v, turning decoding errors into invalid-input
// errors that name the field at fault. JSON nested deeper than MaxDepth is
// refused before decoding.
func Unmarshal(data []byte, v any, prefix string) error {
	if err := CheckDepth(data, strings.TrimSuffix(prefix, ".")); err != nil {
		return err
	}
	rest, err := json.Parse(data, v, json.UseNumber)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return graph.FieldErrorf(prefix+te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), te.Value)
		}
		if prefix == "" {
			return graph.Errorf(graph.KindInvalid, "invalid JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		return graph.FieldErrorf(strings.TrimSuffix(prefix, "."), "invalid JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return graph.Errorf(graph.KindInvalid, "invalid JSON: data after the top-level value")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return goKind
}

// DecodeMessage decodes one message of the given type ("" to take the type
// from the body, as in a batch). receivedAt is when the server got it;
// batchSentAt and batchContext come from a batch envelope.
func (d *Decoder) DecodeMessage(typ string, data []byte, receivedAt time.Time, batchSentAt string, batchContext json.RawMessage) (*Decoded, error) {
	var m Message
	if err := Unmarshal(data, &m, ""); err != nil {
		return nil, err
	}
	if typ == "" {
		typ = m.Type
		if !Types[typ] {
			if typ == "" {
				return nil, graph.FieldErrorf("type", "is required")
			}
			return nil, graph.FieldErrorf("type", "unknown message type %q", typ)
		}
	}
	if len(m.Context) == 0 || string(m.Context) == "null" {
		m.Context = batchContext
	}
	if m.SentAt == "" {
		m.SentAt = batchSentAt
	}
	out := &Decoded{WriteKey: m.WriteKey}
	o := &graph.Observation{Source: d.Source, MessageID: strings.TrimSpace(m.MessageID)}
	if o.MessageID == "" {
		o.MessageID = "idgraph-" + randomHex(16)
	} else if len(o.MessageID) > 256 {
		return nil, graph.FieldErrorf("messageId", "is longer than 256 bytes")
	}
	var ctx msgContext
	if len(m.Context) > 0 {
		if err := Unmarshal(m.Context, &ctx, "context."); err != nil {
			return nil, err
		}
	}
	t, clamped, err := correctedTime(m, receivedAt)
	if err != nil {
		return nil, err
	}
	o.Time = t
	var traits map[string]any
	if err := objectField(m.Traits, "traits", &traits); err != nil {
		return nil, err
	}
	var props map[string]any
	if err := objectField(m.Properties, "properties", &props); err != nil {
		return nil, err
	}

	ids := &idCollector{n: d.Normalizer, out: out}
	userID, err := idString(m.UserID, "userId")
	if err != nil {
		return nil, err
	}
	anonID, err := idString(m.AnonymousID, "anonymousId")
	if err != nil {
		return nil, err
	}
	if userID == "" && anonID == "" {
		return nil, graph.FieldErrorf("userId", "userId or anonymousId is required")
	}
	ids.add("userId", graph.TypeUserID, userID)
	ids.add("anonymousId", graph.TypeAnonymousID, anonID)
	if len(ids.keys) == 0 {
		r := out.Rejected[0]
		return nil, graph.FieldErrorf(r.Field, "%s", r.Reason)
	}
	for _, f := range []struct {
		field, typ string
		raw        json.RawMessage
	}{
		{"context.device.id", graph.TypeDeviceID, ctx.Device.ID},
		{"context.device.advertisingId", graph.TypeAdvertisingID, ctx.Device.AdvertisingID},
	} {
		v, err := idString(f.raw, f.field)
		if err != nil {
			return nil, err
		}
		ids.add(f.field, f.typ, v)
	}
	// A group call's traits describe the group, not the person.
	if typ != "group" {
		ids.addTrait("traits", traits)
	}
	ids.addTrait("context.traits", ctx.Traits)
	for i, x := range ctx.ExternalIDs {
		field := fmt.Sprintf("context.externalIds[%d]", i)
		v, err := idString(x.ID, field+".id")
		if err != nil {
			return nil, err
		}
		ids.add(field, strings.ToLower(strings.TrimSpace(x.Type)), v)
	}
	if len(ids.keys) > MaxMessageIdentifiers {
		return nil, graph.Errorf(graph.KindInvalid, "message carries %d identifiers, more than %d", len(ids.keys), MaxMessageIdentifiers)
	}
	o.Identifiers = ids.keys

	ev := graph.Event{Type: typ, ReceivedAt: receivedAt, Timestamp: o.Time, Context: nullIfEmpty(m.Context)}
	switch typ {
	case "track":
		if strings.TrimSpace(m.Event) == "" {
			return nil, graph.FieldErrorf("event", "is required for a track call")
		}
		ev.Name, ev.Properties = m.Event, nullIfEmpty(m.Properties)
	case "page", "screen":
		ev.Name, ev.Properties = m.Name, nullIfEmpty(m.Properties)
		if m.Category != "" {
			ev.Name = strings.TrimSpace(m.Category + " " + m.Name)
		}
	case "identify":
		ev.Traits = nullIfEmpty(m.Traits)
		o.Traits = traits
	case "group":
		groupID, err := idString(m.GroupID, "groupId")
		if err != nil {
			return nil, err
		}
		if groupID == "" {
			return nil, graph.FieldErrorf("groupId", "is required for a group call")
		}
		ev.Name, ev.Traits = groupID, nullIfEmpty(m.Traits)
	case "alias":
		prev, err := idString(m.PreviousID, "previousId")
		if err != nil {
			return nil, err
		}
		if prev == "" {
			return nil, graph.FieldErrorf("previousId", "is required for an alias call")
		}
		k, err := d.Normalizer.Normalize(graph.TypeAnonymousID, prev)
		if err != nil {
			return nil, graph.FieldErrorf("previousId", "%s", graph.ErrorMessage(err))
		}
		o.PreviousID = k.Value
	}
	o.Event = ev
	if clamped != nil {
		out.Rejected = append(out.Rejected, *clamped)
	}
	out.Observation = o
	return out, nil
}

type idCollector struct {
	n    *graph.Normalizer
	out  *Decoded
	keys []graph.Key
}

func (c *idCollector) add(field, typ, raw string) {
	if raw == "" {
		return
	}
	k, err := c.n.Normalize(typ, raw)
	if err != nil {
		c.out.Rejected = append(c.out.Rejected, graph.RejectedValue{Field: field, Type: typ, Reason: graph.ErrorMessage(err)})
		return
	}
	for _, have := range c.keys {
		if have == k {
			return
		}
	}
	c.keys = append(c.keys, k)
}

func (c *idCollector) addTrait(prefix string, traits map[string]any) {
	for _, typ := range []string{graph.TypeEmail, graph.TypePhone} {
		switch v := traits[typ].(type) {
		case string:
			c.add(prefix+"."+typ, typ, v)
		case json.Number:
			c.add(prefix+"."+typ, typ, v.String())
		case nil:
		default:
			c.out.Rejected = append(c.out.Rejected, graph.RejectedValue{Field: prefix + "." + typ, Type: typ, Reason: "must be a string"})
		}
	}
}

// idString reads an ID field that Segment allows as a string or a number.
func idString(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var v any
	if err := Unmarshal(raw, &v, field+"."); err != nil {
		return "", err
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", graph.FieldErrorf(field, "must be a string or a number")
}

func objectField(raw json.RawMessage, field string, dst *map[string]any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return graph.FieldErrorf(field, "must be an object")
	}
	return Unmarshal(raw, dst, field+".")
}

// Event times must fall in this window after clock-skew correction: from
// MinEventTime to MaxClockSkew past receipt. A time outside it (a device
// clock reset to 1970 that sent no sentAt, an epoch in the wrong unit, a
// hostile value) is replaced by receivedAt and reported in rejected: the
// message still carries good data, and a batch is stored or refused as a
// whole, so refusing one bad clock would lose every message with it.
var MinEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxClockSkew is how far past receipt a corrected time may be.
const MaxClockSkew = 24 * time.Hour

// correctedTime applies the spec's clock-skew correction: the client's
// timestamp is shifted by the difference between receivedAt and sentAt.
// A corrected time outside the window is replaced by receivedAt and
// reported.
func correctedTime(m Message, receivedAt time.Time) (time.Time, *graph.RejectedValue, error) {
	ts, field := m.Timestamp, "timestamp"
	if ts == "" {
		ts, field = m.OriginalTimestamp, "originalTimestamp"
	}
	if ts == "" {
		return receivedAt, nil, nil
	}
	t, err := parseTime(ts, field)
	if err != nil {
		return time.Time{}, nil, err
	}
	how := ""
	if m.SentAt != "" {
		sent, err := parseTime(m.SentAt, "sentAt")
		if err != nil {
			return time.Time{}, nil, err
		}
		// Sub saturates, so absurd values land far outside the window
		// rather than wrapping into it.
		t, how = receivedAt.Add(-sent.Sub(t)), " after correction with sentAt"
	}
	if t.Before(MinEventTime) || t.After(receivedAt.Add(MaxClockSkew)) {
		return receivedAt, &graph.RejectedValue{Field: field, Reason: fmt.Sprintf(
			"%s%s is outside %s to %s after receipt; receivedAt used instead",
			quoteTime(t), how, MinEventTime.Format("2006-01-02"), MaxClockSkew)}, nil
	}
	return t, nil, nil
}

// quoteTime formats t for a message, naming years RFC 3339 cannot write.
func quoteTime(t time.Time) string {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("year %d", y)
	}
	return t.Format(time.RFC3339Nano)
}

func parseTime(s, field string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Time{}, graph.FieldErrorf(field, "%q is not an ISO 8601 date", s)
}

func nullIfEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
