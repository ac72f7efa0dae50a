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
	// "Audience Exited", as Segment's own audiences do.
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

// forwardBatch is a change record as a Segment batch: an identify with
// traits.<segment> true or false and the audience track, addressed by the
// profile's user ID and anonymous ID as they are now. Message IDs derive
// from the destination and the record, so a retry is deduplicated by the
// receiver. ok is false when the profile cannot be addressed (merged into
// another, whose own records carry its membership, or erased, or with
// neither identifier).
func (m *Manager) forwardBatch(ctx context.Context, d *Destination, r *segments.ChangeRecord, now time.Time) (body []byte, ok bool, err error) {
	p, err := m.o.Profiles.Profile(ctx, r.Profile)
	if graph.ErrorKind(err) == graph.KindNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if p.MergedInto != "" {
		return nil, false, nil
	}
	ids, err := graph.ProfileIdentifiers(ctx, m.o.Profiles, p)
	if err != nil {
		return nil, false, err
	}
	var userID, anonymousID string
	for _, n := range ids { // sorted by key: the first of each type
		switch {
		case n.Key.Type == "user_id" && userID == "":
			userID = n.Key.Value
		case n.Key.Type == "anonymous_id" && anonymousID == "":
			anonymousID = n.Key.Value
		}
	}
	if userID == "" && anonymousID == "" {
		return nil, false, nil
	}
	entered := r.Direction == segments.Entered
	event := EventAudienceExited
	if entered {
		event = EventAudienceEntered
	}
	id := MessageID(d.ID, r.Sequence)
	lib := map[string]any{"library": map[string]any{"name": "idgraph-forwarder", "version": "1"}}
	msgs := []segmentMessage{
		{Type: "identify", MessageID: id + "_identify", UserID: userID, AnonymousID: anonymousID,
			Traits: map[string]any{r.Segment: entered}, Timestamp: r.Time.UTC(), Context: lib},
		{Type: "track", MessageID: id + "_track", UserID: userID, AnonymousID: anonymousID, Event: event,
			Properties: map[string]any{"audience_key": r.Segment, "audience_version": r.Version, "reason": r.Reason,
				"sequence": r.Sequence, "idgraph_profile": r.Profile},
			Timestamp: r.Time.UTC(), Context: lib},
	}
	body, err = json.Marshal(map[string]any{"batch": msgs, "sentAt": now.UTC()})
	if err != nil {
		return nil, false, fmt.Errorf("destinations: forward: %w", err)
	}
	return body, true, nil
}
