package resolver

import (
	"context"
	"strconv"
	"time"

	"github.com/idgraph/idgraph/destinations"
	"github.com/idgraph/idgraph/graph"
)

// replay is replayDeliveries: from a sequence (the worker rewinds its
// cursor), or a job over the time range [from, to).
func replay(ctx context.Context, m *destinations.Manager, id string, fromSequence *string, from, to *time.Time) (*destinations.Destination, error) {
	switch {
	case fromSequence != nil && (from != nil || to != nil):
		return nil, graph.FieldErrorf("fromSequence", "give fromSequence, or from and to: not both")
	case fromSequence != nil:
		seq, err := sequenceArg("fromSequence", fromSequence)
		if err != nil {
			return nil, err
		}
		return m.Replay(ctx, id, seq)
	case from == nil:
		return nil, graph.FieldErrorf("from", "a replay needs fromSequence, or from and to")
	case to == nil:
		return nil, graph.FieldErrorf("to", "a replay by time needs to as well as from")
	}
	if _, err := m.ReplayRange(ctx, id, *from, *to); err != nil {
		return nil, err
	}
	return m.Get(ctx, id)
}

// sequenceArg reads an optional 64-bit number given as a string (0 when
// absent).
func sequenceArg(field string, s *string) (uint64, error) {
	if s == nil {
		return 0, nil
	}
	n, err := strconv.ParseUint(*s, 10, 64)
	if err != nil {
		return 0, graph.FieldErrorf(field, "%q is not a sequence number", *s)
	}
	return n, nil
}

func optionalSequence(n uint64) *string {
	if n == 0 {
		return nil
	}
	s := strconv.FormatUint(n, 10)
	return &s
}
