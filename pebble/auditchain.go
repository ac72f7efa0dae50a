package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/graph"
)

var (
	pChain        = []byte("ac/")  // + sequence (8 bytes, big-endian) → audit.Entry
	pChainSubject = []byte("acs/") // + subject hash (hex) + "/" + sequence → empty: the entries naming a person
)

var _ audit.Backend = (*Store)(nil)

// AuditChain returns the audit chain, kept in the same database and
// appended under the store's write lock, so the chain is linear.
func (s *Store) AuditChain() audit.Store { return chainStore{s} }

type chainStore struct{ s *Store }

func chainKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(key(pChain), seq) }

func chainSubjectKey(subject string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(key(pChainSubject, []byte(subject), []byte("/")), seq)
}

// head returns the newest entry, nil when there is none.
func (c chainStore) head() (*audit.Entry, error) {
	it, err := c.s.db.NewIter(&cpebble.IterOptions{LowerBound: pChain, UpperBound: prefixEnd(pChain)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if !it.Last() {
		return nil, it.Error()
	}
	return audit.Unmarshal(it.Value())
}

func (c chainStore) write(b *cpebble.Batch, e *audit.Entry) error {
	data, err := audit.Marshal(e)
	if err != nil {
		return err
	}
	return b.Set(chainKey(e.Seq), data, nil)
}

// AppendEntries builds the next entries on the head and writes them and
// their subject index in one synced batch.
func (c chainStore) AppendEntries(_ context.Context, next func(head *audit.Entry) ([]*audit.Entry, error)) ([]*audit.Entry, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	head, err := c.head()
	if err != nil {
		return nil, fmt.Errorf("pebble: append audit entries: %w", err)
	}
	es, err := next(head)
	if err != nil {
		return nil, err
	}
	if err := audit.FollowAll(head, es); err != nil {
		return nil, fmt.Errorf("pebble: append audit entries: %w", err)
	}
	b := c.s.db.NewBatch()
	defer b.Close()
	for _, e := range es {
		if err := c.write(b, e); err != nil {
			return nil, fmt.Errorf("pebble: append audit entries: %w", err)
		}
		for _, sub := range e.Subjects {
			if err := b.Set(chainSubjectKey(sub, e.Seq), nil, nil); err != nil {
				return nil, fmt.Errorf("pebble: append audit entries: %w", err)
			}
		}
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return nil, &graph.Error{Kind: graph.KindUnavailable, Msg: "pebble: writing audit entries", Err: err}
	}
	return es, nil
}

// Entries pages through the chain by sequence.
func (c chainStore) Entries(_ context.Context, after uint64, limit int) ([]*audit.Entry, error) {
	out, err := pageJSON[*audit.Entry](c.s, chainKey(after+1), prefixEnd(pChain), limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: audit entries: %w", err)
	}
	return out, nil
}

// subjectSeqs lists the sequences of the entries naming subject.
func (c chainStore) subjectSeqs(subject string) ([]uint64, error) {
	prefix := key(pChainSubject, []byte(subject), []byte("/"))
	it, err := c.s.db.NewIter(&cpebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var seqs []uint64
	for it.First(); it.Valid(); it.Next() {
		seqs = append(seqs, binary.BigEndian.Uint64(it.Key()[len(prefix):]))
	}
	return seqs, it.Error()
}

func (c chainStore) entry(seq uint64) (*audit.Entry, error) {
	v, closer, err := c.s.db.Get(chainKey(seq))
	if err != nil {
		return nil, fmt.Errorf("audit entry %d: %w", seq, err)
	}
	defer closer.Close()
	return audit.Unmarshal(v)
}

// EntriesFor returns the entries naming subject, through the index.
func (c chainStore) EntriesFor(_ context.Context, subject string) ([]*audit.Entry, error) {
	seqs, err := c.subjectSeqs(subject)
	if err != nil {
		return nil, fmt.Errorf("pebble: audit entries for a subject: %w", err)
	}
	out := make([]*audit.Entry, 0, len(seqs))
	for _, seq := range seqs {
		e, err := c.entry(seq)
		if err != nil {
			return nil, fmt.Errorf("pebble: audit entries for a subject: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// RedactEntries blanks the targets of the entries naming subject.
func (c chainStore) RedactEntries(_ context.Context, subject string, at time.Time) (int, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	seqs, err := c.subjectSeqs(subject)
	if err != nil {
		return 0, fmt.Errorf("pebble: redact audit entries: %w", err)
	}
	b := c.s.db.NewBatch()
	defer b.Close()
	n := 0
	for _, seq := range seqs {
		e, err := c.entry(seq)
		if err != nil {
			return 0, fmt.Errorf("pebble: redact audit entries: %w", err)
		}
		if !audit.RedactEntry(e, at) {
			continue
		}
		if err := c.write(b, e); err != nil {
			return 0, fmt.Errorf("pebble: redact audit entries: %w", err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		return 0, &graph.Error{Kind: graph.KindUnavailable, Msg: "pebble: redacting audit entries", Err: err}
	}
	return n, nil
}
