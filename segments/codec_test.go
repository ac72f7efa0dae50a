package segments_test

import (
	"encoding/hex"
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
		"fingerprints": {Profile: "p_4", Rev: 3, Definitions: "00a1b2c3d4e5f60718293a4b",
			Identity: segments.Identity{Absorbed: "ffeeddccbbaa998877665544"}},
		"not lowercase": {Profile: "p_4", Rev: 3, Definitions: "00A1B2C3D4E5F60718293A4B", Identity: segments.Identity{Absorbed: "ffeeddccbbaa99887766554g"}},
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
			got, err := segments.DecodeState(st.Profile, data)
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
			fromJSON, err := segments.DecodeState(st.Profile, old)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromJSON, got) {
				t.Errorf("from JSON\n%+v\nfrom the compact encoding\n%+v", fromJSON, got)
			}
			if name == "fingerprints" && len(data) > 30 { // tag, rev, 2 × (tag, 12 bytes), no counts, no entries
				t.Errorf("a state of two fingerprints is %d bytes", len(data))
			}
			if len(st.Entries) > 3 && len(data)*2 > len(old) {
				t.Errorf("compact encoding is %d bytes, JSON %d", len(data), len(old))
			}
		})
	}
}

// TestStateCodecV1: a state in the encoding before version 2 (which held
// the profile ID and the fingerprints as text) reads as the state it was.
func TestStateCodecV1(t *testing.T) {
	const v1 = "011803705f330c3031323334353637383961620466666565020c616e6f6e796d6f75735f69640405656d61696c02090d636f6d70757465643a63697479020406737472696e67040d5ac3bc7269636820002022712210636f6d70757465643a6c6173745f617402040974696d657374616d7008c0b0ffb00d959aef3a0c636f6d70757465643a6c7476040c066e756d626572020000000000b06440b8b1ffb00d959aef3a0c636f6d70757465643a6e65670404066e756d626572029c7500883ce437fe0b636f6d70757465643a6e6f020407626f6f6c65616e000c636f6d70757465643a796573020407626f6f6c65616e010d636f6d70757465643a7a65726f0404066e756d626572000b7365676d656e743a766970060bc0b0ffb00d959aef3ac09ac9b10d959aef3a0f7365676d656e743a77616974696e670208e0e8ffb00d959aef3a"
	data, err := hex.DecodeString(v1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := segments.DecodeState("p_3", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := codecStates(t)["full"]; !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if again := segments.EncodeState(got); len(again) >= len(data) {
		t.Errorf("version 2 is %d bytes, version 1 %d", len(again), len(data))
	}
}

// TestStateCodecCorrupt: every truncation of an encoded state, and bytes
// that claim more than they hold, are errors, never a panic.
func TestStateCodecCorrupt(t *testing.T) {
	data := segments.EncodeState(codecStates(t)["full"])
	for n := 1; n < len(data); n++ {
		if _, err := segments.DecodeState("p_3", data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
		}
	}
	for _, bad := range [][]byte{
		{0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f},       // a profile ID longer than the data
		{0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f}, // more entries than bytes
		{0x02, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f}, // a fingerprint longer than the data
		{0x02, 0x00, 0x01, 0xaa, 0xbb},                   // a fingerprint of 2 bytes, not 12
		{0x02, 0x00, 0x03, 0x00, 0x00, 0x00},             // a fingerprint of an unknown kind
		append(append([]byte{}, data...), 0),             // trailing bytes
		{}, {'x'},
	} {
		if _, err := segments.DecodeState("p", bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	nan := segments.EncodeState(&segments.ProfileState{Profile: "p", Entries: map[string]segments.Entry{
		"computed:x": {Value: &segments.Value{Type: "number", Number: math.NaN()}}}})
	if st, err := segments.DecodeState("p", nan); err != nil || !math.IsNaN(st.Entries["computed:x"].Value.Number) {
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
