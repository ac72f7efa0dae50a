package destinations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// Destination kinds.
const (
	// KindWebhook posts Standard Webhooks messages (the default).
	KindWebhook = "webhook"
	// KindSegment forwards to a Segment-compatible API (Segment,
	// RudderStack, another idgraph) as its sources would: an identify
	// setting traits.<segment> and a track "Audience Entered" or
	// "Audience Exited", as Segment's own audiences do, and an identify
	// setting traits.<trait> to a computed trait's value, as Segment's
	// computed traits do.
	KindSegment = "segment"
)

// Forwarded events (Segment's audience events).
const (
	EventAudienceEntered = "Audience Entered"
	EventAudienceExited  = "Audience Exited"
)

// MaxWriteKeyLen bounds a forwarder's write key.
const MaxWriteKeyLen = 256

// CheckWriteKey refuses an empty, long or unprintable write key.
func CheckWriteKey(k string) error {
	if k == "" || len(k) > MaxWriteKeyLen || strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
		return graph.FieldErrorf("writeKey", "a write key is 1 to %d printable characters without spaces", MaxWriteKeyLen)
	}
	return nil
}

// CreateForwarder stores a new enabled destination of kind segment that
// forwards the connected segments' changes to the Segment-compatible API
// at baseURL (its /v1/batch) with writeKey, stored sealed as a webhook's
// secret is.
func (m *Manager) CreateForwarder(ctx context.Context, name, baseURL, writeKey string, segmentKeys []string) (*Destination, error) {
	if m.o.Profiles == nil {
		return nil, errors.New("destinations: forwarding needs the profile store (Options.Profiles)")
	}
	if err := CheckWriteKey(writeKey); err != nil {
		return nil, err
	}
	d, err := m.create(ctx, name, baseURL, segmentKeys, func(d *Destination) {
		d.Kind = KindSegment
		d.SealedSecret = m.o.Sealer.Seal(d.ID, writeKey)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// segmentMessage is one message of a forwarded Segment batch.
type segmentMessage struct {
	Type        string         `json:"type"`
	MessageID   string         `json:"messageId"`
	UserID      string         `json:"userId,omitempty"`
	AnonymousID string         `json:"anonymousId,omitempty"`
	Event       string         `json:"event,omitempty"`
	Traits      map[string]any `json:"traits,omitempty"`
	Properties  map[string]any `json:"properties,omitempty"`
	Timestamp   time.Time      `json:"timestamp"`
	Context     map[string]any `json:"context"`
}

// forwarderPolicy is how a forwarder addresses a profile: Segment's two
// keys, the user ID and the anonymous ID, each the one the profile has
// held longest, so that the receiving profile does not change when newer
// identifiers join.
var forwarderPolicy = IdentifierPolicy{Types: []string{"user_id", "anonymous_id"}, Mode: IdentifiersFirst}

// policy is the identifier policy the destination's messages carry: a
// forwarder's own, or the one set on a webhook (nil: none).
func (d *Destination) policy() *IdentifierPolicy {
	if d.Kind == KindSegment {
		return &forwarderPolicy
	}
	return d.Identifiers
}

// address returns the user ID and anonymous ID to send a profile's
// messages under, from the identifiers the forwarder's policy picked.
func address(ids []Identifier) (userID, anonymousID string) {
	for _, n := range ids {
		switch {
		case n.Type == "user_id" && userID == "":
			userID = n.Value
		case n.Type == "anonymous_id" && anonymousID == "":
			anonymousID = n.Value
		}
	}
	return userID, anonymousID
}

// forwardBatch is a change record as a Segment batch: an identify with
// traits.<segment> true or false and the audience track, or an identify
// with traits.<trait> set to the computed value (traitMessages). An entry
// (or a value) is addressed by the profile's user ID and anonymous ID
// now, an exit (or a value going missing) by those the forwarder sent
// before (batchState.identifiers), so that the receiving profile that was
// told of the entry is the one told of the exit, also after a merge or an
// identifier's removal. Message IDs derive
// from id (the record's MessageID, or a job's id for it), so a retry is
// deduplicated by the receiver. ok is false when the record is not forwarded: the profile
// cannot be addressed (neither identifier), or it is an exit of a profile
// merged into one the forwarder holds in the segment (sending it would
// take the person out of an audience they are still in).
func (m *Manager) forwardBatch(d *Destination, r *segments.ChangeRecord, b *batchState, id string, now time.Time) (body []byte, ok bool, err error) {
	msgs := forwardMessages(d, r, b, id)
	if msgs == nil {
		return nil, false, nil
	}
	body, err = marshalBatch(msgs, now)
	return body, err == nil, err
}

// forwardMessages are a change record's Segment messages (forwardBatch),
// nil when it is not forwarded.
func forwardMessages(d *Destination, r *segments.ChangeRecord, b *batchState, id string) []segmentMessage {
	if b.heldBySurvivor(r) {
		return nil
	}
	userID, anonymousID := address(b.identifiers(d, r))
	if userID == "" && anonymousID == "" {
		return nil
	}
	if r.IsTrait() {
		return traitMessages(id, userID, anonymousID, r, b)
	}
	props := map[string]any{"audience_key": r.Segment, "audience_version": r.Version, "reason": r.Reason,
		"sequence": r.Sequence, "idgraph_profile": r.Profile}
	return audienceMessages(id, userID, anonymousID, r.Segment, r.Direction == segments.Entered, props, r.Time)
}

// traitMessages are the Segment messages of a computed trait's change, as
// Segment's own computed traits send them: an identify setting
// traits.<trait> to the value (null when missing), message ID id_identify.
// A merge's null of an absorbed profile is followed, when the forwarder
// holds a value for the survivor, by an identify sending that value again
// to where it went (id_survivor; survivorValue).
func traitMessages(id, userID, anonymousID string, r *segments.ChangeRecord, b *batchState) []segmentMessage {
	msgs := []segmentMessage{identify(id+"_identify", userID, anonymousID, map[string]any{r.Trait: r.Value.Interface()}, r.Time)}
	if v := b.survivorValue(r); v != nil && (v.userID != "" || v.anonymousID != "") {
		msgs = append(msgs, identify(id+"_survivor", v.userID, v.anonymousID, map[string]any{r.Trait: v.rec.Value.Interface()}, r.Time))
	}
	b.latest[[2]string{r.Profile, r.Trait}] = sentValue{rec: r, userID: userID, anonymousID: anonymousID}
	return msgs
}

// forwarderContext is every forwarded message's context.
var forwarderContext = map[string]any{"library": map[string]any{"name": "idgraph-forwarder", "version": "1"}}

// identify is an identify message setting traits.
func identify(id, userID, anonymousID string, traits map[string]any, at time.Time) segmentMessage {
	return segmentMessage{Type: "identify", MessageID: id, UserID: userID, AnonymousID: anonymousID,
		Traits: traits, Timestamp: at.UTC(), Context: forwarderContext}
}

// forwardRecords sends a batch of change records to a forwarder in one
// Segment batch call, each record's messages with the ids it has when
// sent alone (idOf: its MessageID, or a job's id for it; so a receiver
// deduplicates a retry, batched or not). It returns the records
// forwarded; none (no request) when no record can be.
func (m *Manager) forwardRecords(ctx context.Context, d *Destination, recs []*segments.ChangeRecord, b *batchState, now time.Time, idOf func(*segments.ChangeRecord) string) (Result, []*segments.ChangeRecord, error) {
	var msgs []segmentMessage
	var sent []*segments.ChangeRecord
	for _, r := range recs {
		if ms := forwardMessages(d, r, b, idOf(r)); ms != nil {
			msgs, sent = append(msgs, ms...), append(sent, r)
		}
	}
	if len(sent) == 0 {
		return Result{}, nil, nil
	}
	body, err := marshalBatch(msgs, now)
	if err != nil {
		return Result{}, nil, err
	}
	writeKey, err := m.o.Sealer.OpenText(d.ID, d.SealedSecret)
	if err != nil {
		return Result{}, nil, err
	}
	return m.o.Client.Forward(ctx, d.URL, writeKey, body), sent, nil
}

// audienceMessages are the Segment messages of one audience change: an
// identify setting traits.<segment> and the Audience Entered or Exited
// track, with message IDs id_identify and id_track.
func audienceMessages(id, userID, anonymousID, segment string, entered bool, props map[string]any, at time.Time) []segmentMessage {
	event := EventAudienceExited
	if entered {
		event = EventAudienceEntered
	}
	return []segmentMessage{
		identify(id+"_identify", userID, anonymousID, map[string]any{segment: entered}, at),
		{Type: "track", MessageID: id + "_track", UserID: userID, AnonymousID: anonymousID, Event: event,
			Properties: props, Timestamp: at.UTC(), Context: forwarderContext},
	}
}

// marshalBatch is the body of a Segment batch call.
func marshalBatch(msgs []segmentMessage, now time.Time) ([]byte, error) {
	body, err := json.Marshal(map[string]any{"batch": msgs, "sentAt": now.UTC()})
	if err != nil {
		return nil, fmt.Errorf("destinations: forward: %w", err)
	}
	return body, nil
}
