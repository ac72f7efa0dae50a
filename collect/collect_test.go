package collect_test

import (
	"strings"
	"testing"
	"time"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
)

func TestIdentifiersTakenFromMessage(t *testing.T) {
	d := &collect.Decoder{Normalizer: graph.NewNormalizer("US"), Source: "http"}
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
	d := &collect.Decoder{Normalizer: graph.NewNormalizer("US")}
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
	d := &collect.Decoder{Normalizer: graph.NewNormalizer("US")}
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
		if o.MessageID == "" || len(o.Identifiers) == 0 || len(o.Identifiers) > collect.MaxMessageIdentifiers {
			t.Fatalf("accepted message without a usable shape: %+v", o)
		}
		if o.Event.Type == "track" && o.Event.Name == "" {
			t.Fatalf("track accepted without an event name")
		}
	})
}

func TestTimesOutsideTheWindowUseReceivedAt(t *testing.T) {
	d := &collect.Decoder{Normalizer: graph.NewNormalizer("US")}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		fields string
		want   time.Time
		field  string // the field named in rejected; "" for none
	}{
		{`"timestamp":"2026-03-04T05:00:00Z"`, time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC), ""},
		{`"timestamp":"2000-01-01T00:00:00Z"`, collect.MinEventTime, ""},
		{`"timestamp":"2026-03-05T05:06:07Z"`, now.Add(collect.MaxClockSkew), ""},
		{`"timestamp":"2026-03-05T05:06:08Z"`, now, "timestamp"},
		{`"timestamp":"9223372036854775807"`, now, "timestamp"},
		{`"timestamp":"-9223372036854775808"`, now, "timestamp"},
		{`"timestamp":"-1"`, now, "timestamp"},
		{`"timestamp":"0001-01-01T00:00:00Z"`, now, "timestamp"},
		{`"timestamp":"1999-12-31T23:59:59Z"`, now, "timestamp"},
		{`"originalTimestamp":"9999-12-31T23:59:59Z"`, now, "originalTimestamp"},
		// A device clock reset to 1970 is corrected by its sentAt.
		{`"timestamp":"1970-01-01T00:00:10Z","sentAt":"1970-01-01T00:00:20Z"`, now.Add(-10 * time.Second), ""},
		// An absurd sentAt saturates the correction, far out of the window.
		{`"timestamp":"2026-03-04T05:00:00Z","sentAt":"9223372036854775807"`, now, "timestamp"},
		{`"timestamp":"-9223372036854775808","sentAt":"9223372036854775807"`, now, "timestamp"},
		{`"timestamp":"9223372036854775807","sentAt":"-9223372036854775808"`, now, "timestamp"},
	} {
		got, err := d.DecodeMessage("track", []byte(`{"userId":"u","event":"e",`+tc.fields+`}`), now, "", nil)
		if err != nil {
			t.Errorf("%s: %v", tc.fields, err)
			continue
		}
		if !got.Observation.Time.Equal(tc.want) || !got.Observation.Event.Timestamp.Equal(tc.want) {
			t.Errorf("%s: time %v, event %v, want %v", tc.fields, got.Observation.Time, got.Observation.Event.Timestamp, tc.want)
		}
		var field string
		if len(got.Rejected) > 0 {
			field = got.Rejected[0].Field
		}
		if len(got.Rejected) > 1 || field != tc.field {
			t.Errorf("%s: rejected %+v, want field %q", tc.fields, got.Rejected, tc.field)
		}
	}
	for _, bad := range []string{`"timestamp":"yesterday"`, `"sentAt":"soon","timestamp":"2026-03-04T05:00:00Z"`} {
		if _, err := d.DecodeMessage("track", []byte(`{"userId":"u","event":"e",`+bad+`}`), now, "", nil); graph.ErrorKind(err) != graph.KindInvalid {
			t.Errorf("%s: err = %v, want invalid", bad, err)
		}
	}
}

func TestCheckDepth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat(`{"a":[`, n/2) + strings.Repeat(`]}`, n/2) }
	for _, tc := range []struct {
		data string
		ok   bool
	}{
		{nest(collect.MaxDepth), true},
		{nest(collect.MaxDepth + 2), false},
		{strings.Repeat("[", 20000), false},
		// Brackets inside strings, escaped quotes included, do not count.
		{`{"a":"` + strings.Repeat(`[\"{`, 1000) + `"}`, true},
		{`["\\"` + strings.Repeat(",[", collect.MaxDepth) + `]`, false},
		{``, true},
	} {
		err := collect.CheckDepth([]byte(tc.data), "traits")
		if (err == nil) != tc.ok {
			t.Errorf("%.40q…: err = %v, want ok %v", tc.data, err, tc.ok)
		}
		if err != nil && (graph.ErrorKind(err) != graph.KindInvalid || !strings.Contains(graph.ErrorMessage(err), "traits: is nested more than 64 levels deep")) {
			t.Errorf("error %q does not name the field and the limit", graph.ErrorMessage(err))
		}
	}
	d := &collect.Decoder{Normalizer: graph.NewNormalizer("US")}
	_, err := d.DecodeMessage("track", []byte(`{"userId":"u","event":"e","properties":`+nest(100)+`}`), time.Now(), "", nil)
	if graph.ErrorKind(err) != graph.KindInvalid || !strings.Contains(graph.ErrorMessage(err), "64") {
		t.Errorf("deep properties: err = %v, want invalid naming the limit", err)
	}
}
