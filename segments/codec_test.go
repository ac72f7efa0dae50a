package segments_test

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/idgraph/idgraph/segments"
)

func codecStates(t *testing.T) map[string]*segments.ProfileState {
	t.Helper()
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	return map[string]*segments.ProfileState{
		"empty":     {Profile: "p_1"},
		"revision":  {Profile: "p_1", Rev: 7, Definitions: "abc"},
		"old times": {Profile: "p_2", Rev: 1, Entries: map[string]segments.Entry{"segment:old": {Version: 1, Member: true, Since: time.Date(1600, 1, 1, 0, 0, 0, 1, time.UTC)}}},
		"full": {Profile: "p_3", Rev: 12, Definitions: "0123456789ab",
			Identity: segments.Identity{Absorbed: "ffee", Counts: map[string]int{"anonymous_id": 2, "email": 1}},
			Entries: map[string]segments.Entry{
				"segment:vip":      {Version: 3, Member: true, Since: t0, Deadline: t0.Add(7 * 24 * time.Hour)},
				"segment:waiting":  {Version: 1, Deadline: t0.Add(time.Hour)},
				"computed:ltv":     {Version: 2, Value: &segments.Value{Type: "number", Number: 165.5}, Deadline: t0.Add(time.Minute)},
				"computed:neg":     {Version: 2, Value: &segments.Value{Type: "number", Number: -1e300}},
				"computed:zero":    {Version: 2, Value: &segments.Value{Type: "number"}},
				"computed:yes":     {Version: 1, Value: &segments.Value{Type: "boolean", Bool: true}},
				"computed:no":      {Version: 1, Value: &segments.Value{Type: "boolean"}},
				"computed:city":    {Version: 1, Value: &segments.Value{Type: "string", String: "Zürich \x00 \"q\""}},
				"computed:last_at": {Version: 1, Value: &segments.Value{Type: "timestamp", Time: t0}},
			}},
	}
}

// TestStateCodec: a state encodes and decodes to itself, deterministically,
// and a state stored as JSON (before the compact encoding) still reads.
func TestStateCodec(t *testing.T) {
	for name, st := range codecStates(t) {
		t.Run(name, func(t *testing.T) {
			data := segments.EncodeState(st)
			got, err := segments.DecodeState(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, st) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, st)
			}
			if again := segments.EncodeState(got); string(again) != string(data) {
				t.Errorf("encoding is not deterministic")
			}
			old, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := segments.DecodeState(old)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromJSON, got) {
				t.Errorf("from JSON\n%+v\nfrom the compact encoding\n%+v", fromJSON, got)
			}
			if len(st.Entries) > 3 && len(data)*2 > len(old) {
				t.Errorf("compact encoding is %d bytes, JSON %d", len(data), len(old))
			}
		})
	}
}

// TestStateDecoderShared: one StateDecoder reading many states (a page),
// corrupt ones among them, decodes each as DecodeState does, and the
// states it returns share nothing a later decode changes.
func TestStateDecoderShared(t *testing.T) {
	var dec segments.StateDecoder
	states := codecStates(t)
	var got []*segments.ProfileState
	var want []*segments.ProfileState
	for round := range 3 {
		for _, st := range states {
			data := segments.EncodeState(st)
			if _, err := dec.Decode(data[:len(data)/2]); err == nil && len(data) > 2 {
				t.Fatalf("round %d: a truncated state decoded", round)
			}
			d, err := dec.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := segments.DecodeState(data)
			got, want = append(got, d), append(want, w)
		}
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("state %d: shared decoder\n%+v\nalone\n%+v", i, got[i], want[i])
		}
	}
}

// TestStateCodecCorrupt: every truncation of an encoded state, and bytes
// that claim more than they hold, are errors, never a panic.
func TestStateCodecCorrupt(t *testing.T) {
	data := segments.EncodeState(codecStates(t)["full"])
	for n := 1; n < len(data); n++ {
		if _, err := segments.DecodeState(data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
		}
	}
	for _, bad := range [][]byte{
		{0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f},       // a profile ID longer than the data
		{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f}, // more entries than bytes
		append(append([]byte{}, data...), 0),             // trailing bytes
		{}, {'x'},
	} {
		if _, err := segments.DecodeState(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	nan := segments.EncodeState(&segments.ProfileState{Profile: "p", Entries: map[string]segments.Entry{
		"computed:x": {Value: &segments.Value{Type: "number", Number: math.NaN()}}}})
	if st, err := segments.DecodeState(nan); err != nil || !math.IsNaN(st.Entries["computed:x"].Value.Number) {
		t.Errorf("NaN: %v %v", st, err)
	}
}

// TestChangeCodec: change records encode and decode to themselves, and
// records stored as JSON (before the compact encoding) still read.
func TestChangeCodec(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 5, time.UTC)
	for _, c := range []*segments.ChangeRecord{
		{Sequence: 1, Segment: "vip", Version: 2, Profile: "p_1", Direction: segments.Entered, Reason: segments.ReasonData, Time: t0},
		{Sequence: 1 << 40, Trait: "ltv", Version: 1, Profile: "p_2", Direction: segments.Changed, Reason: segments.ReasonMerged, Time: t0,
			Previous: &segments.Value{Type: "number", Number: 3.5}, Value: &segments.Value{Type: "string", String: "gold"}},
		{Sequence: 9, Trait: "last", Version: 4, Profile: "p_3", Direction: segments.Changed, Reason: segments.ReasonErased, Time: t0,
			Previous: &segments.Value{Type: "timestamp", Time: t0}},
	} {
		data := segments.EncodeChange(c)
		got, err := segments.DecodeChange(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("decoded\n%+v\nwant\n%+v", got, c)
		}
		old, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if fromJSON, err := segments.DecodeChange(old); err != nil || !reflect.DeepEqual(fromJSON, c) {
			t.Errorf("from JSON %+v, %v; want %+v", fromJSON, err, c)
		}
		for n := 1; n < len(data); n++ {
			if _, err := segments.DecodeChange(data[:n]); err == nil {
				t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
			}
		}
	}
}
