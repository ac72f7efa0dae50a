package segment_test

import (
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segment"
)

func TestIdentifiersTakenFromMessage(t *testing.T) {
	d := &segment.Decoder{Normalizer: graph.NewNormalizer("US"), Source: "http"}
	msg := `{"userId":42,"anonymousId":"a1","traits":{"email":"X@Corp.io","phone":"bad"},
		"context":{"ip":"10.0.0.1","userAgent":"UA","device":{"id":"dev","advertisingId":"ad"},
		"traits":{"email":"x@corp.io"},"externalIds":[{"id":"H-1","type":"HubSpot_ID"},{"id":"n@corp.io","type":"email"}]}}`
	got, err := d.DecodeMessage("identify", []byte(msg), time.Now(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []graph.Key{{Type: "user_id", Value: "42"}, {Type: "anonymous_id", Value: "a1"}, {Type: "device_id", Value: "dev"}, {Type: "advertising_id", Value: "ad"},
		{Type: "email", Value: "x@corp.io"}, {Type: "hubspot_id", Value: "H-1"}, {Type: "email", Value: "n@corp.io"}}
	if len(got.Observation.Identifiers) != len(want) {
		t.Fatalf("identifiers = %v, want %v", got.Observation.Identifiers, want)
	}
	for i, k := range want {
		if got.Observation.Identifiers[i] != k {
			t.Errorf("identifier %d = %v, want %v", i, got.Observation.Identifiers[i], k)
		}
	}
	if len(got.Rejected) != 1 || got.Rejected[0].Field != "traits.phone" {
		t.Errorf("rejected = %+v, want traits.phone", got.Rejected)
	}
}

func TestGroupTraitsAreNotPersonIdentifiers(t *testing.T) {
	d := &segment.Decoder{Normalizer: graph.NewNormalizer("US")}
	got, err := d.DecodeMessage("group", []byte(`{"userId":"u","groupId":"g","traits":{"email":"billing@acme.io"}}`), time.Now(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Observation.Identifiers) != 1 {
		t.Errorf("identifiers = %v, want only the user", got.Observation.Identifiers)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","userId":"u","event":"e","timestamp":"2024-01-01T00:00:00Z","sentAt":"2024-01-01T00:00:01Z"}`,
		`{"type":"identify","anonymousId":"a","traits":{"email":"a@b.io","phone":"+1 415 555 0134"}}`,
		`{"type":"alias","userId":"u","previousId":"p"}`,
		`{"type":"page","userId":1.5,"context":{"externalIds":[{"id":3,"type":"x"}]}}`,
		`{"type":"group","userId":"u","groupId":7}`,
		`{"type":"screen"`, `[]`, `null`, `{"type":"track","userId":{}}`,
	} {
		f.Add(s)
	}
	d := &segment.Decoder{Normalizer: graph.NewNormalizer("US")}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, msg string) {
		got, err := d.DecodeMessage("", []byte(msg), now, "", nil)
		if err != nil {
			if k := graph.ErrorKind(err); k != graph.KindInvalid {
				t.Fatalf("error of kind %s: %v", k, err)
			}
			return
		}
		o := got.Observation
		if o.MessageID == "" || len(o.Identifiers) == 0 || len(o.Identifiers) > segment.MaxMessageIdentifiers {
			t.Fatalf("accepted message without a usable shape: %+v", o)
		}
		if o.Event.Type == "track" && o.Event.Name == "" {
			t.Fatalf("track accepted without an event name")
		}
	})
}
