package neo4j

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	neo4jdriver "github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/idgraph/idgraph/graph"
)

// Conversions between domain records and property maps.
//
// Times are Neo4j datetimes in UTC (nanosecond precision, readable in the
// Browser); a zero time is no property. Empty optional strings are no
// property either. Lists keep the nil/empty distinction, as JSON does.
// Maps of maps (profile counts and traits) and raw JSON (event payloads)
// are JSON strings, since Neo4j properties cannot nest.

func props(v any) map[string]any {
	switch v := v.(type) {
	case neo4jdriver.Node:
		return v.Props
	case neo4jdriver.Relationship:
		return v.Props
	case map[string]any:
		return v
	}
	return nil
}

func timeVal(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func stringList(xs []string) any {
	if xs == nil {
		return nil // a nil []string would be sent as an empty list
	}
	return xs
}

func keyList(ks []graph.Key) any {
	if ks == nil {
		return nil
	}
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String()
	}
	return out
}

func jsonVal(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func rawVal(r json.RawMessage) any {
	if r == nil {
		return nil
	}
	return string(r)
}

func getString(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func getInt(m map[string]any, k string) int {
	n, _ := m[k].(int64)
	return int(n)
}

func getFloat(m map[string]any, k string) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

func getBool(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

func getTime(m map[string]any, k string) time.Time {
	t, _ := m[k].(time.Time)
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func getStrings(m map[string]any, k string) []string {
	l, ok := m[k].([]any)
	if !ok {
		return nil
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i], _ = v.(string)
	}
	return out
}

func getKeys(m map[string]any, k string) []graph.Key {
	ss := getStrings(m, k)
	if ss == nil {
		return nil
	}
	out := make([]graph.Key, len(ss))
	for i, s := range ss {
		out[i] = parseKey(s)
	}
	return out
}

func getRaw(m map[string]any, k string) json.RawMessage {
	s, ok := m[k].(string)
	if !ok {
		return nil
	}
	return json.RawMessage(s)
}

// parseKey inverts Key.String; type names cannot contain a colon.
func parseKey(s string) graph.Key {
	t, v, _ := strings.Cut(s, ":")
	return graph.Key{Type: t, Value: v}
}

func identifierProps(n *graph.Identifier) map[string]any {
	return map[string]any{
		"key": n.Key.String(), "type": n.Type, "value": n.Value,
		"search": strings.ToLower(n.Value), "searchLen": searchLen(n.Value),
		"profile":   optString(n.Profile),
		"firstSeen": timeVal(n.FirstSeen), "lastSeen": timeVal(n.LastSeen),
		"sources": stringList(n.Sources), "strong": n.Strong, "users": n.Users, "hub": n.Hub,
	}
}

func identifierFrom(m map[string]any) *graph.Identifier {
	return &graph.Identifier{
		Key:       graph.Key{Type: getString(m, "type"), Value: getString(m, "value")},
		Profile:   getString(m, "profile"),
		FirstSeen: getTime(m, "firstSeen"), LastSeen: getTime(m, "lastSeen"),
		Sources: getStrings(m, "sources"), Strong: getInt(m, "strong"), Users: getInt(m, "users"), Hub: getBool(m, "hub"),
	}
}

func edgeRow(e *graph.Edge) map[string]any {
	return map[string]any{"a": e.A.String(), "b": e.B.String(), "props": map[string]any{
		"score": e.Score, "kind": e.Kind, "status": e.Status, "reason": optString(e.Reason),
		"sources": stringList(e.Sources), "count": e.Count,
		"firstSeen": timeVal(e.FirstSeen), "lastSeen": timeVal(e.LastSeen),
		"model": optString(e.Model), "explanation": rawVal(e.Explanation),
		"impact": e.Impact, "decision": jsonOrNil(e.Decision), "queue": optString(queuePos(e)),
	}}
}

// queuePos is a pending edge's place in the review queue (the linked_queue
// index): its rank, then the pair; "" for an edge that is not pending.
func queuePos(e *graph.Edge) string {
	if e.Status != graph.StatusPending {
		return ""
	}
	return graph.QueueRank(e) + "|" + e.A.String() + "\x00" + e.B.String()
}

// jsonOrNil stores a small struct as a JSON string, or nothing for nil.
func jsonOrNil[T any](v *T) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return string(b)
}

func edgeFrom(a, b graph.Key, m map[string]any) *graph.Edge {
	return &graph.Edge{
		A: a, B: b, Score: getFloat(m, "score"), Kind: getString(m, "kind"),
		Status: getString(m, "status"), Reason: getString(m, "reason"),
		Evidence: graph.Evidence{
			Sources: getStrings(m, "sources"), Count: getInt(m, "count"),
			FirstSeen: getTime(m, "firstSeen"), LastSeen: getTime(m, "lastSeen"),
		},
		Model: getString(m, "model"), Explanation: getRaw(m, "explanation"),
		Impact: getInt(m, "impact"), Decision: decisionFrom(m),
	}
}

func decisionFrom(m map[string]any) *graph.Decision {
	s := getString(m, "decision")
	if s == "" {
		return nil
	}
	d := &graph.Decision{}
	if json.Unmarshal([]byte(s), d) != nil {
		return nil
	}
	return d
}

// edgeRecord reads an edge from the columns a.type, a.value, b.type,
// b.value, r.
func edgeRecord(vals []any) *graph.Edge {
	var a, b graph.Key
	a.Type, _ = vals[0].(string)
	a.Value, _ = vals[1].(string)
	b.Type, _ = vals[2].(string)
	b.Value, _ = vals[3].(string)
	return edgeFrom(a, b, props(vals[4]))
}

func profileProps(p *graph.Profile) (map[string]any, error) {
	counts, err := jsonVal(p.Counts)
	if err != nil {
		return nil, fmt.Errorf("profile %s: counts: %w", p.ID, err)
	}
	traits, err := jsonVal(p.Traits)
	if err != nil {
		return nil, fmt.Errorf("profile %s: traits: %w", p.ID, err)
	}
	return map[string]any{
		"id": p.ID, "createdAt": timeVal(p.CreatedAt), "updatedAt": timeVal(p.UpdatedAt),
		"mergedInto": optString(p.MergedInto), "absorbed": stringList(p.Absorbed),
		"counts": counts, "traits": traits, "anchor": optString(anchorString(p.Anchor)),
		"cannotLink": stringList(p.CannotLink),
	}, nil
}

func anchorString(k graph.Key) string {
	if k == (graph.Key{}) {
		return ""
	}
	return k.String()
}

func profileFrom(m map[string]any) (*graph.Profile, error) {
	p := &graph.Profile{
		ID: getString(m, "id"), CreatedAt: getTime(m, "createdAt"), UpdatedAt: getTime(m, "updatedAt"),
		MergedInto: getString(m, "mergedInto"), Absorbed: getStrings(m, "absorbed"),
		CannotLink: getStrings(m, "cannotLink"),
	}
	if a := getString(m, "anchor"); a != "" {
		p.Anchor = parseKey(a)
	}
	if s := getString(m, "counts"); s != "" {
		if err := json.Unmarshal([]byte(s), &p.Counts); err != nil {
			return nil, fmt.Errorf("profile %s: corrupt counts: %w", p.ID, err)
		}
	}
	if s := getString(m, "traits"); s != "" {
		if err := json.Unmarshal([]byte(s), &p.Traits); err != nil {
			return nil, fmt.Errorf("profile %s: corrupt traits: %w", p.ID, err)
		}
	}
	return p, nil
}

func eventProps(e *graph.Event) map[string]any {
	return map[string]any{
		"id": e.ID, "messageId": e.MessageID, "type": e.Type, "name": optString(e.Name),
		"source": e.Source, "timestamp": timeVal(e.Timestamp), "receivedAt": timeVal(e.ReceivedAt),
		"identifiers": keyList(e.Identifiers),
		"properties":  rawVal(e.Properties), "traits": rawVal(e.Traits), "context": rawVal(e.Context),
	}
}

// eventRow is an event's row for Apply: its properties, and its position
// for the SEEN_WITH relationships.
func eventRow(e *graph.Event) map[string]any {
	return map[string]any{"messageId": e.MessageID, "pos": timelinePos(e.Timestamp, e.ID), "props": eventProps(e)}
}

// timelinePos is an event's place in timelines, a string whose byte order
// is the order of (timestamp, ID): the Unix seconds with the sign bit
// flipped and the nanoseconds, in fixed-width hex, then the ID.
func timelinePos(ts time.Time, id string) string {
	return fmt.Sprintf("%016x%08x%s", uint64(ts.Unix())^(1<<63), ts.Nanosecond(), id)
}

// timelineEnd comes after every timelinePos.
const timelineEnd = "~"

func eventFrom(m map[string]any) *graph.Event {
	return &graph.Event{
		ID: getString(m, "id"), MessageID: getString(m, "messageId"), Type: getString(m, "type"),
		Name: getString(m, "name"), Source: getString(m, "source"),
		Timestamp: getTime(m, "timestamp"), ReceivedAt: getTime(m, "receivedAt"),
		Identifiers: getKeys(m, "identifiers"),
		Properties:  getRaw(m, "properties"), Traits: getRaw(m, "traits"), Context: getRaw(m, "context"),
	}
}

func mergeProps(e *graph.MergeEvent) map[string]any {
	return map[string]any{
		"id": e.ID, "at": timeVal(e.At), "messageId": e.MessageID, "source": e.Source,
		"survivor": e.Survivor, "absorbed": e.Absorbed,
		"edgeA": e.Edge[0].String(), "edgeB": e.Edge[1].String(),
		"survivorSize": e.SurvivorSize, "absorbedSize": e.AbsorbedSize, "group": stringList(e.Group),
	}
}

func mergeFrom(m map[string]any) *graph.MergeEvent {
	return &graph.MergeEvent{
		ID: getString(m, "id"), At: getTime(m, "at"), MessageID: getString(m, "messageId"),
		Source: getString(m, "source"), Survivor: getString(m, "survivor"), Absorbed: getString(m, "absorbed"),
		Edge:         [2]graph.Key{parseKey(getString(m, "edgeA")), parseKey(getString(m, "edgeB"))},
		SurvivorSize: getInt(m, "survivorSize"), AbsorbedSize: getInt(m, "absorbedSize"),
		Group: getStrings(m, "group"),
	}
}

func hubProps(h *graph.HubMarking) map[string]any {
	return map[string]any{
		"id": h.ID, "at": timeVal(h.At), "key": h.Key.String(),
		"strong": h.Strong, "limit": h.Limit, "messageId": h.MessageID, "rule": h.Rule,
	}
}

func hubFrom(m map[string]any) *graph.HubMarking {
	return &graph.HubMarking{
		ID: getString(m, "id"), At: getTime(m, "at"), Key: parseKey(getString(m, "key")),
		Strong: getInt(m, "strong"), Limit: getInt(m, "limit"), MessageID: getString(m, "messageId"),
		Rule: getString(m, "rule"),
	}
}
