package traffic

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/idgraph/idgraph/collect"
	"github.com/idgraph/idgraph/graph"
)

// ReadMessages calls fn with each line of dir/messages.jsonl, in order,
// with its sender from dir/senders.txt (the files WriteDir writes). The
// body is only valid during the call. SendAt and Redelivery are not in
// the files; a redelivery is a line repeating an earlier one.
func ReadMessages(dir string, fn func(Message) error) error {
	mf, err := os.Open(filepath.Join(dir, "messages.jsonl"))
	if err != nil {
		return fmt.Errorf("read messages: %w", err)
	}
	defer mf.Close()
	sf, err := os.Open(filepath.Join(dir, "senders.txt"))
	if err != nil {
		return fmt.Errorf("read messages: %w", err)
	}
	defer sf.Close()
	msgs := bufio.NewScanner(mf)
	msgs.Buffer(make([]byte, 64<<10), 8<<20)
	senders := bufio.NewScanner(sf)
	for line := 1; msgs.Scan(); line++ {
		if !senders.Scan() {
			return fmt.Errorf("read messages: senders.txt ends before messages.jsonl line %d", line)
		}
		person, err := strconv.Atoi(senders.Text())
		if err != nil {
			return fmt.Errorf("read messages: senders.txt line %d: %w", line, err)
		}
		if err := fn(Message{Body: msgs.Bytes(), Person: person}); err != nil {
			return err
		}
	}
	if err := errors.Join(msgs.Err(), senders.Err()); err != nil {
		return fmt.Errorf("read messages: %w", err)
	}
	if senders.Scan() {
		return errors.New("read messages: senders.txt has more lines than messages.jsonl")
	}
	return nil
}

// ReadOwner reads dir/truth.csv back into the owner of each identifier.
func ReadOwner(dir string) (map[graph.Key]int, error) {
	f, err := os.Open(filepath.Join(dir, "truth.csv"))
	if err != nil {
		return nil, fmt.Errorf("read truth: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = 3
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("read truth: header: %w", err)
	}
	owner := map[graph.Key]int{}
	for {
		row, err := r.Read()
		if err == io.EOF {
			return owner, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read truth: %w", err)
		}
		person, err := strconv.Atoi(row[2])
		if err != nil {
			line, _ := r.FieldPos(2)
			return nil, fmt.Errorf("read truth: line %d: person: %w", line, err)
		}
		owner[graph.Key{Type: row[0], Value: row[1]}] = person
	}
}

// EventScorer places each message's event in the profile that shows it
// first (that of its highest-priority identifier), as a support agent
// looking the person up would see it: a family tablet's events land in
// whichever member's profile holds the tablet. Redeliveries (a message ID
// seen before) count once; foreign messages (see Message) are left out.
type EventScorer struct {
	// Owner, when set, finds foreign messages from their user ID, for
	// messages read from files, which do not carry the flag.
	Owner     map[graph.Key]int
	profileOf map[graph.Key]string
	rank      map[string]int
	dec       collect.Decoder
	seen      map[string]bool
	as        []Assignment
	// placed is the identifier that placed each of as.
	placed []graph.Key
}

// NewEventScorer scores against the profiles in profileOf (identifier →
// profile ID), ranking identifier types by priority (most trusted first).
func NewEventScorer(profileOf map[graph.Key]string, priority []string) *EventScorer {
	rank := map[string]int{}
	for i, typ := range priority {
		rank[typ] = i
	}
	return &EventScorer{profileOf: profileOf, rank: rank, dec: collect.Decoder{Normalizer: graph.NewNormalizer("US")}, seen: map[string]bool{}}
}

// Add places one message's event.
func (e *EventScorer) Add(m Message) error {
	if m.Redelivery || m.Foreign {
		return nil
	}
	d, err := e.dec.DecodeMessage("", m.Body, time.Now(), "", nil)
	if err != nil {
		return fmt.Errorf("score events: decode %s: %w", m.Body, err)
	}
	if e.seen[d.Observation.MessageID] {
		return nil
	}
	e.seen[d.Observation.MessageID] = true
	for _, k := range d.Observation.Identifiers {
		if owner, ok := e.Owner[k]; ok && k.Type == graph.TypeUserID && owner != m.Person {
			return nil // foreign
		}
	}
	rank := func(typ string) int {
		if i, ok := e.rank[typ]; ok {
			return i
		}
		return len(e.rank)
	}
	keys := slices.Clone(d.Observation.Identifiers)
	slices.SortStableFunc(keys, func(a, b graph.Key) int { return rank(a.Type) - rank(b.Type) })
	for _, k := range keys {
		if p, ok := e.profileOf[k]; ok {
			e.as = append(e.as, Assignment{Profile: p, Person: m.Person})
			e.placed = append(e.placed, k)
			break
		}
	}
	return nil
}

// Score scores the events added so far.
func (e *EventScorer) Score() Score { return ScoreAssignments(e.as) }

// ScoreEvents scores the messages' events (see EventScorer).
func ScoreEvents(profileOf map[graph.Key]string, msgs []Message, priority []string) (Score, error) {
	e := NewEventScorer(profileOf, priority)
	for _, m := range msgs {
		if err := e.Add(m); err != nil {
			return Score{}, err
		}
	}
	return e.Score(), nil
}
