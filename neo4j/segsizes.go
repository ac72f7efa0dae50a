package neo4j

import (
	"context"
	"time"

	"github.com/idgraph/idgraph/segments"
)

// Segment sizes: a count is the degree of the segment's node in
// IN_SEGMENT relationships, which Neo4j keeps per relationship type, so it
// is read without reading the members. Samples are (:SegmentSize
// {segment, at, size}) nodes, unique by (segment, at).
var segmentSizeSchema = []string{
	"CREATE CONSTRAINT segment_size_at IF NOT EXISTS FOR (z:SegmentSize) REQUIRE (z.segment, z.at) IS UNIQUE",
	"CREATE INDEX segment_size_time IF NOT EXISTS FOR (z:SegmentSize) ON (z.at)",
}

// MemberCount counts a segment's IN_SEGMENT relationships.
func (g segStore) MemberCount(ctx context.Context, segment string) (int, error) {
	recs, err := g.s.read(ctx, `MATCH (s:Segment {key: $key}) RETURN COUNT { (s)<-[:IN_SEGMENT]-() }`,
		map[string]any{"key": segment})
	if err != nil {
		return 0, wrap("neo4j: member count", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	n, _ := recs[0].Values[0].(int64)
	return int(n), nil
}

// PutSizeSamples merges the samples by (segment, at).
func (g segStore) PutSizeSamples(ctx context.Context, samples []segments.SizeSample) error {
	rows := make([]any, len(samples))
	for i, sm := range samples {
		rows[i] = map[string]any{"segment": sm.Segment, "at": sm.At.UTC(), "size": sm.Size}
	}
	_, err := g.s.write(ctx, `UNWIND $rows AS r
		MERGE (z:SegmentSize {segment: r.segment, at: r.at}) SET z.size = r.size`, map[string]any{"rows": rows})
	return wrap("neo4j: put size samples", err)
}

// SizeSamples reads a segment's samples in a time range.
func (g segStore) SizeSamples(ctx context.Context, segment string, from, to time.Time, limit int) ([]segments.SizeSample, error) {
	recs, err := g.s.read(ctx, `MATCH (z:SegmentSize {segment: $segment}) WHERE z.at >= $from AND z.at < $to
		RETURN z.at, z.size ORDER BY z.at LIMIT $limit`,
		map[string]any{"segment": segment, "from": from.UTC(), "to": to.UTC(), "limit": limit})
	if err != nil {
		return nil, wrap("neo4j: size samples", err)
	}
	out := make([]segments.SizeSample, len(recs))
	for i, r := range recs {
		at, _ := r.Values[0].(time.Time)
		n, _ := r.Values[1].(int64)
		out[i] = segments.SizeSample{Segment: segment, At: at.UTC(), Size: int(n)}
	}
	return out, nil
}

// DeleteSizeSamples deletes every sample taken before a time.
func (g segStore) DeleteSizeSamples(ctx context.Context, before time.Time) error {
	_, err := g.s.write(ctx, `MATCH (z:SegmentSize) WHERE z.at < $before DELETE z`, map[string]any{"before": before.UTC()})
	return wrap("neo4j: delete size samples", err)
}
