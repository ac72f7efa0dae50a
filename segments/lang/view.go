package lang

import (
	"bytes"
	"cmp"
	"fmt"
	"time"

	sjson "github.com/segmentio/encoding/json"

	"github.com/idgraph/idgraph/graph"
)

// Event is one track event as the evaluator sees it. Properties are
// decoded with json.Number numbers (see EventFromGraph).
type Event struct {
	Name       string
	Timestamp  time.Time
	MessageID  string
	Properties map[string]any
}

// ProfileView is the profile data a definition reads. Trait takes a path as
// graph stores it (graph.FlattenTraits: nested keys joined by dots).
// Events returns a name's events in any order, each messageId once (the
// store drops redeliveries before they get here).
type ProfileView interface {
	Trait(flatPath string) (any, bool)
	IDCount(idType string) int
	Events(name string) []Event
	InSegment(key string) bool
	Computed(key string) (any, bool)
}

// Snapshot is a ProfileView held in memory: the from-scratch evaluation of
// a profile, tests, and previews read one.
type Snapshot struct {
	Traits   map[string]any // flattened paths
	IDCounts map[string]int
	Events   []Event
	Segments map[string]bool
	Computed map[string]any
}

// View returns s as a ProfileView. It groups the events by name once, so
// take a new view after changing s.
func (s *Snapshot) View() ProfileView {
	byName := map[string][]Event{}
	for _, e := range s.Events {
		byName[e.Name] = append(byName[e.Name], e)
	}
	return snapshotView{s, byName}
}

type snapshotView struct {
	s      *Snapshot
	byName map[string][]Event
}

func (v snapshotView) Trait(p string) (any, bool) {
	x, ok := v.s.Traits[p]
	return x, ok
}
func (v snapshotView) IDCount(t string) int      { return v.s.IDCounts[t] }
func (v snapshotView) InSegment(key string) bool { return v.s.Segments[key] }
func (v snapshotView) Computed(key string) (any, bool) {
	x, ok := v.s.Computed[key]
	return x, ok
}
func (v snapshotView) Events(name string) []Event { return v.byName[name] }

// SnapshotOf builds a Snapshot from a stored profile and its events
// (track events only count; others are ignored).
func SnapshotOf(p *graph.Profile, events []*graph.Event) (*Snapshot, error) {
	s := &Snapshot{Traits: map[string]any{}, IDCounts: map[string]int{}}
	for path, t := range p.Traits {
		s.Traits[path] = t.Value
	}
	for typ, n := range p.Counts {
		s.IDCounts[typ] = n
	}
	for _, e := range events {
		if e.Type != "track" {
			continue
		}
		ev, err := EventFromGraph(e)
		if err != nil {
			return nil, err
		}
		s.Events = append(s.Events, ev)
	}
	return s, nil
}

// EventFromGraph decodes a stored event's properties, numbers as
// json.Number so that none loses precision before a reducer reads it.
func EventFromGraph(e *graph.Event) (Event, error) {
	ev := Event{Name: e.Name, Timestamp: e.Timestamp, MessageID: e.MessageID}
	if len(e.Properties) > 0 && !bytes.Equal(e.Properties, []byte("null")) {
		// segmentio's parser, not a json.Decoder: the same values (its
		// Number is encoding/json's) at a fraction of the cost, which was
		// most of a live evaluation's.
		if _, err := sjson.Parse(e.Properties, &ev.Properties, sjson.UseNumber); err != nil {
			return Event{}, fmt.Errorf("segments: event %s properties: %w", e.MessageID, err)
		}
	}
	return ev, nil
}

// eventOrder is the order of events everywhere: timestamp, then messageId.
// first/last and first_at/last_at break ties by it.
func eventOrder(a, b *Event) int {
	if c := a.Timestamp.Compare(b.Timestamp); c != 0 {
		return c
	}
	return cmp.Compare(a.MessageID, b.MessageID)
}
