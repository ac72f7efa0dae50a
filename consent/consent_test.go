package consent_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
)

var (
	t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ka = graph.Key{Type: graph.TypeUserID, Value: "a"}
	kb = graph.Key{Type: graph.TypeAnonymousID, Value: "b"}
)

func rec(id string, k graph.Key, status string, at time.Time, expires time.Time) consent.Record {
	return consent.Record{ID: id, Key: k, Purpose: "analytics", Status: status, Time: at, Expires: expires, Source: "test"}
}

func TestDerive(t *testing.T) {
	var never time.Time
	for _, c := range []struct {
		name string
		recs []consent.Record
		at   time.Time
		want string
	}{
		{"no records", nil, t0, consent.StateMissing},
		{"other purpose only", []consent.Record{{ID: "x", Key: ka, Purpose: "marketing", Status: consent.Granted, Time: t0}}, t0, consent.StateMissing},
		{"granted", []consent.Record{rec("1", ka, consent.Granted, t0, never)}, t0, consent.StateGranted},
		{"granted later than asked", []consent.Record{rec("1", ka, consent.Granted, t0.Add(time.Hour), never)}, t0, consent.StateMissing},
		{"latest wins per identifier", []consent.Record{rec("1", ka, consent.Granted, t0, never), rec("2", ka, consent.Denied, t0.Add(time.Minute), never)}, t0.Add(time.Hour), consent.StateDenied},
		{"regrant after denial", []consent.Record{rec("2", ka, consent.Denied, t0, never), rec("1", ka, consent.Granted, t0.Add(time.Minute), never)}, t0.Add(time.Hour), consent.StateGranted},
		{"expired", []consent.Record{rec("1", ka, consent.Granted, t0, t0.Add(time.Hour))}, t0.Add(time.Hour), consent.StateExpired},
		{"not yet expired", []consent.Record{rec("1", ka, consent.Granted, t0, t0.Add(time.Hour))}, t0.Add(time.Hour - 1), consent.StateGranted},
		{"two identifiers agree", []consent.Record{rec("1", ka, consent.Granted, t0, never), rec("2", kb, consent.Granted, t0, never)}, t0, consent.StateGranted},
		{"disagree: conflict", []consent.Record{rec("1", ka, consent.Granted, t0.Add(time.Minute), never), rec("2", kb, consent.Denied, t0, never)}, t0.Add(time.Hour), consent.StateConflict},
		{"one expired, one granted: conflict", []consent.Record{rec("1", ka, consent.Granted, t0, t0.Add(time.Minute)), rec("2", kb, consent.Granted, t0, never)}, t0.Add(time.Hour), consent.StateConflict},
		{"a choice on every identifier resolves it", []consent.Record{rec("1", ka, consent.Granted, t0, never), rec("2", kb, consent.Denied, t0, never),
			rec("3", ka, consent.Granted, t0.Add(time.Minute), never), rec("3", kb, consent.Granted, t0.Add(time.Minute), never)}, t0.Add(time.Hour), consent.StateGranted},
		{"same time: the greater ID wins", []consent.Record{rec("b", ka, consent.Denied, t0, never), rec("a", ka, consent.Granted, t0, never)}, t0, consent.StateDenied},
	} {
		if got := consent.Derive(c.recs, "analytics", c.at); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestFromContext(t *testing.T) {
	p, err := consent.NewPurposes(nil, map[string]string{"C0002": "analytics", "c0004": "advertising"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, ctx string
		want      []consent.Choice
	}{
		{"none", `{}`, []consent.Choice{}},
		{"not an object", `[1,2]`, nil},
		{"segment", `{"consent":{"categoryPreferences":{"Analytics":true,"Advertising":false,"odd":"yes","Sales":true}}}`, []consent.Choice{
			{"advertising", consent.Denied, consent.SourceSegment}, {"analytics", consent.Granted, consent.SourceSegment}, {"sales", consent.Granted, consent.SourceSegment}}},
		{"segment category mapped", `{"consent":{"categoryPreferences":{"C0002":true}}}`, []consent.Choice{{"analytics", consent.Granted, consent.SourceSegment}}},
		{"rudderstack strings and objects", `{"consentManagement":{"allowedConsentIds":["C0002"],"deniedConsentIds":[{"consentId":"C0004"},42,{"consentId":7}]}}`, []consent.Choice{
			{"7", consent.Denied, consent.SourceRudderStack}, {"advertising", consent.Denied, consent.SourceRudderStack}, {"analytics", consent.Granted, consent.SourceRudderStack}}},
		{"denial wins within a message", `{"consentManagement":{"allowedConsentIds":["C0002"],"deniedConsentIds":["C0002"]},"consent":{"categoryPreferences":{"analytics":true}}}`,
			[]consent.Choice{{"analytics", consent.Denied, consent.SourceRudderStack}}},
		{"wrong types skipped", `{"consent":"yes","consentManagement":{"allowedConsentIds":"C0002"}}`, nil},
	} {
		got := p.FromContext(json.RawMessage(c.ctx))
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// A flood of categories is bounded.
	big := map[string]bool{}
	for i := range 1000 {
		big[string(rune('a'+i%26))+string(rune('a'+i/26))] = true
	}
	data, _ := json.Marshal(map[string]any{"consent": map[string]any{"categoryPreferences": big}})
	if got := p.FromContext(data); len(got) != consent.MaxChoices {
		t.Errorf("%d choices from 1000 categories, want %d", len(got), consent.MaxChoices)
	}
}

func TestPurposesConfig(t *testing.T) {
	p, err := consent.NewPurposes(nil, nil)
	if err != nil || !reflect.DeepEqual(p.Names(), consent.DefaultPurposes) {
		t.Fatalf("defaults: %v %v", p, err)
	}
	if err := p.Require("sales"); graph.ErrorKind(err) != graph.KindInvalid {
		t.Errorf("unconfigured purpose: %v", err)
	}
	for _, bad := range [][]string{{"Bad Name"}, {""}, {"ok", "x/y"}} {
		if _, err := consent.NewPurposes(bad, nil); err == nil {
			t.Errorf("purposes %q accepted", bad)
		}
	}
	if _, err := consent.NewPurposes([]string{"analytics"}, map[string]string{"C1": "marketing"}); err == nil {
		t.Error("a mapping to an unconfigured purpose accepted")
	}
	m, err := consent.ParseMapping("C0002=analytics, C0004=advertising,")
	if err != nil || m["C0004"] != "advertising" || len(m) != 2 {
		t.Errorf("ParseMapping = %v %v", m, err)
	}
	if _, err := consent.ParseMapping("C0002"); err == nil {
		t.Error("a pair without = accepted")
	}
}
