package segments_test

import (
	"testing"
	"time"

	"github.com/idgraph/idgraph/segments"
)

func TestDiff(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	member := segments.Entry{Version: 2, Member: true, Since: at}
	waiting := segments.Entry{Version: 1, Deadline: at.Add(time.Hour)} // a non-member with a deadline
	value := segments.Entry{Version: 1, Value: &segments.Value{Type: "number", Number: 3}}
	other := segments.Entry{Version: 2, Value: &segments.Value{Type: "string", String: "3"}} // not equal to 3
	tests := []struct {
		name      string
		old, next map[string]segments.Entry
		reasons   map[string]string
		want      []string
	}{
		{"nothing", nil, nil, nil, nil},
		{"enters", nil, map[string]segments.Entry{"segment:a": member}, nil, []string{"a entered v2 data"}},
		{"a stored non-member enters once", map[string]segments.Entry{"segment:a": waiting}, map[string]segments.Entry{"segment:a": member}, nil,
			[]string{"a entered v2 data"}},
		{"exits, entry kept", map[string]segments.Entry{"segment:a": member}, map[string]segments.Entry{"segment:a": waiting}, nil,
			[]string{"a exited v1 data"}},
		{"exits, entry dropped: the old version", map[string]segments.Entry{"segment:a": member}, nil, map[string]string{"segment:a": segments.ReasonDefinition},
			[]string{"a exited v2 definition"}},
		{"stays", map[string]segments.Entry{"segment:a": member}, map[string]segments.Entry{"segment:a": member}, nil, nil},
		{"a computed value appears", nil, map[string]segments.Entry{"computed:a": value}, nil, []string{"a changed v1 data null→3"}},
		{"a computed value goes: the old version", map[string]segments.Entry{"computed:a": value}, nil, nil, []string{"a changed v1 data 3→null"}},
		{"a computed value changes", map[string]segments.Entry{"computed:a": value}, map[string]segments.Entry{"computed:a": other}, nil,
			[]string{"a changed v2 data 3→\"3\""}},
		{"a computed value stays, version and deadline move", map[string]segments.Entry{"computed:a": value},
			map[string]segments.Entry{"computed:a": {Version: 2, Value: &segments.Value{Type: "number", Number: 3}, Deadline: at}}, nil, nil},
		{"a missing value with a deadline is no change", nil, map[string]segments.Entry{"computed:a": waiting}, nil, nil},
		{"traits before segments", nil, map[string]segments.Entry{"segment:a": member, "computed:b": value}, nil,
			[]string{"b changed v1 data null→3", "a entered v2 data"}},
		{"in key order", nil, map[string]segments.Entry{"segment:b": member, "segment:a": member, "segment:c": waiting}, nil,
			[]string{"a entered v2 data", "b entered v2 data"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sv := segments.Save{State: &segments.ProfileState{Profile: "p_1", Entries: tc.next}, Reason: segments.ReasonData, Reasons: tc.reasons, At: at}
			cs := segments.Diff(sv, tc.old)
			for _, c := range cs {
				if c.Profile != "p_1" || !c.Time.Equal(at) {
					t.Errorf("record %+v: want profile p_1 at %s", *c, at)
				}
			}
			want(t, tc.name, describe(cs), tc.want...)
		})
	}
}
