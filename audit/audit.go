// Package audit keeps the tamper-evident audit chain: one entry per admin
// or steward action, per access to a person's data and per recorded
// consent change, each holding the SHA-256 hash of its own canonical bytes,
// which include the previous entry's hash. Changing, removing or
// reordering an entry breaks every hash after it, and Verify names the
// first broken link.
//
// An entry's target (what was acted on: an identifier, a key id, a segment)
// may name a person, and a person's erasure must not leave their
// identifiers in the log nor break the chain. So the hash covers not the
// target but an HMAC of it (TargetMAC), and the HMACs of the people it
// names (Subjects); Redact blanks the readable target of every entry that
// names a subject, and the chain stays valid. Verify, given the HMAC key
// (the pepper), also checks that every readable target still matches its
// MAC, so a target cannot be rewritten either.
//
// Every backend implements Store (see audit/storetest); Log is what the
// rest of idgraph calls.
package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Outcomes. A refused or failed action is recorded too, with the error
// kind as its outcome (graph.Kind: "invalid", "forbidden", "not_found"…).
const (
	OutcomeOK = "ok"
)

// Genesis is the Prev of the first entry.
var Genesis = strings.Repeat("0", 64)

// Entry is one link of the chain. Every field but Target and Redacted is
// covered by Hash.
type Entry struct {
	Seq   uint64    `json:"seq"`
	At    time.Time `json:"at"`
	KeyID string    `json:"keyId,omitempty"`
	Role  string    `json:"role,omitempty"`
	// Action names what was done: a GraphQL mutation's name
	// ("createApiKey", "link"), "exportSubject", "consent"…
	Action string `json:"action"`
	// Target is what was acted on, readable; Redact blanks it.
	Target string `json:"target,omitempty"`
	// TargetMAC is HMAC-SHA256(key, Target), hex: the hash covers it.
	TargetMAC string `json:"targetMac"`
	// Subjects are SubjectHash of every person the target names.
	Subjects  []string `json:"subjects,omitempty"`
	RequestID string   `json:"requestId,omitempty"`
	Outcome   string   `json:"outcome"`
	Remote    string   `json:"remote,omitempty"`
	// Prev is the previous entry's Hash (Genesis for the first).
	Prev string `json:"prev"`
	// Hash is SHA-256 of Canonical(), hex.
	Hash string `json:"hash"`
	// Redacted is when Redact blanked Target.
	Redacted time.Time `json:"redacted,omitzero"`
}

// canonical is what an entry's hash covers, in a fixed field order.
type canonical struct {
	V         int      `json:"v"`
	Seq       uint64   `json:"seq"`
	At        string   `json:"at"`
	KeyID     string   `json:"keyId"`
	Role      string   `json:"role"`
	Action    string   `json:"action"`
	TargetMAC string   `json:"targetMac"`
	Subjects  []string `json:"subjects"`
	RequestID string   `json:"requestId"`
	Outcome   string   `json:"outcome"`
	Remote    string   `json:"remote"`
	Prev      string   `json:"prev"`
}

// Canonical returns the bytes an entry's hash covers: version 1, JSON with
// a fixed field order, the time in RFC 3339 with nanoseconds, UTC.
func (e *Entry) Canonical() []byte {
	subjects := e.Subjects
	if subjects == nil {
		subjects = []string{}
	}
	b, _ := json.Marshal(canonical{V: 1, Seq: e.Seq, At: e.At.UTC().Format(time.RFC3339Nano), KeyID: e.KeyID, Role: e.Role,
		Action: e.Action, TargetMAC: e.TargetMAC, Subjects: subjects, RequestID: e.RequestID,
		Outcome: e.Outcome, Remote: e.Remote, Prev: e.Prev})
	return b
}

// ComputeHash returns SHA-256 of the entry's canonical bytes, hex.
func (e *Entry) ComputeHash() string {
	h := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(h[:])
}

// mac returns HMAC-SHA256(key, s), hex.
func mac(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// SubjectHash names a person in the chain without their identifier:
// HMAC-SHA256(key, "type:value"), hex, where the value is normalised as
// ingestion does and the key is the pepper. Erasure computes the same hash
// of each identifier it erases and passes it to Log.Redact.
func SubjectHash(key []byte, subject string) string {
	return mac(key, "subject\x00"+subject)
}

// Store keeps the chain. Every backend implements it (audit/storetest).
type Store interface {
	// AppendEntries calls next with the newest entry (nil when the chain
	// is empty) while holding the chain's lock, and stores the entries
	// next returns, each following the one before it (the first the
	// head), in one durable write: all or nothing. next may be called
	// again if the backend retries.
	AppendEntries(ctx context.Context, next func(head *Entry) ([]*Entry, error)) ([]*Entry, error)
	// Entries returns up to limit entries with Seq above after, by Seq.
	Entries(ctx context.Context, after uint64, limit int) ([]*Entry, error)
	// EntriesFor returns every entry whose Subjects holds subject, by Seq.
	EntriesFor(ctx context.Context, subject string) ([]*Entry, error)
	// RedactEntries blanks the Target of every entry whose Subjects holds
	// subject and stamps Redacted with at (unless already redacted), and
	// returns how many it changed.
	RedactEntries(ctx context.Context, subject string, at time.Time) (int, error)
}

// Backend is implemented by graph stores that keep the audit chain.
type Backend interface {
	AuditChain() Store
}

// Record is what a caller says about one action; Log.Append adds the time,
// the chain and, from the context (WithRequest), who asked and from where.
type Record struct {
	Action string
	Target string
	// Subjects are the people the target names, as "type:value" with the
	// value normalised; they are stored as SubjectHash only.
	Subjects []string
	// Outcome is OutcomeOK or the error kind; Err sets it when empty.
	Outcome string
	Err     error
	// Request fields; zero ones are taken from the context.
	Request
}

// Request describes who made a request: the key's public id and role, the
// request id and the remote address.
type Request struct {
	KeyID     string
	Role      string
	RequestID string
	Remote    string
}

type requestKey struct{}

// WithRequest records the request's caller for Append.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestOf returns what WithRequest recorded.
func RequestOf(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}

// Log appends to and reads a chain. A nil *Log records nothing.
type Log struct {
	store Store
	key   []byte
	now   func() time.Time
	group group
}

// group gathers concurrent appends into one durable write (group commit):
// the first appender leads and writes every entry queued when it starts,
// while later ones queue; when its write is done it hands the lead to the
// first of those, whose write then takes them all. Each appender returns
// only once its own entry is durable, and an appender leads at most one
// write, so no request waits behind more than two.
type group struct {
	mu      sync.Mutex
	leading bool
	queue   []*pending
}

// pending is one queued append: build makes its entry on the entry
// before it; done hears its result, or that it now leads.
type pending struct {
	ctx   context.Context
	build func(prev *Entry) *Entry
	done  chan result
}

type result struct {
	e    *Entry
	err  error
	lead bool
}

// New returns a log over the store; key (the pepper) keys the target and
// subject HMACs.
func New(store Store, key []byte) *Log {
	return &Log{store: store, key: key, now: func() time.Time { return time.Now().UTC() }}
}

// Open returns the log of a graph store that keeps the chain.
func Open(store any, key []byte) (*Log, error) {
	b, ok := store.(Backend)
	if !ok {
		return nil, fmt.Errorf("audit: the store %T keeps no audit chain", store)
	}
	return New(b.AuditChain(), key), nil
}

// Store returns the log's store.
func (l *Log) Store() Store { return l.store }

// SubjectHash is SubjectHash under the log's key.
func (l *Log) SubjectHash(subject string) string { return SubjectHash(l.key, subject) }

// MaxTarget bounds a target's length; longer ones are cut.
const MaxTarget = 1024

// Append adds one entry at the head of the chain and returns it. The
// chain stays linear however many processes append at once: the store
// builds each entry on the head it holds locked.
func (l *Log) Append(ctx context.Context, r Record) (*Entry, error) {
	if l == nil {
		return nil, nil
	}
	if r.Action == "" {
		return nil, fmt.Errorf("audit: append: %w", graph.FieldErrorf("action", "is empty"))
	}
	req := RequestOf(ctx)
	req.KeyID = cmp.Or(r.KeyID, req.KeyID)
	req.Role = cmp.Or(r.Role, req.Role)
	req.RequestID = cmp.Or(r.RequestID, req.RequestID)
	req.Remote = cmp.Or(r.Remote, req.Remote)
	outcome := r.Outcome
	if outcome == "" {
		outcome = OutcomeOK
		if r.Err != nil {
			outcome = cmp.Or(string(graph.ErrorKind(r.Err)), "error")
		}
	}
	target := r.Target
	if len(target) > MaxTarget {
		target = strings.ToValidUTF8(target[:MaxTarget], "")
	}
	subjects := make([]string, 0, len(r.Subjects))
	for _, s := range r.Subjects {
		if h := l.SubjectHash(s); !slices.Contains(subjects, h) {
			subjects = append(subjects, h)
		}
	}
	slices.Sort(subjects)
	at := l.now()
	e, err := l.commit(&pending{ctx: ctx, done: make(chan result, 1), build: func(head *Entry) *Entry {
		e := &Entry{Seq: 1, At: at, KeyID: req.KeyID, Role: req.Role, Action: r.Action, Target: target,
			TargetMAC: mac(l.key, target), Subjects: subjects, RequestID: req.RequestID, Outcome: outcome,
			Remote: req.Remote, Prev: Genesis}
		if head != nil {
			e.Seq, e.Prev = head.Seq+1, head.Hash
			if e.At.Before(head.At) { // a clock stepping back never orders the chain backwards
				e.At = head.At
			}
		}
		e.Hash = e.ComputeHash()
		return e
	}})
	if err != nil {
		return nil, fmt.Errorf("audit: append %s: %w", r.Action, err)
	}
	return e, nil
}

// commit queues p and returns its entry once it is durable, leading the
// write that stores it when no write is running (group).
func (l *Log) commit(p *pending) (*Entry, error) {
	g := &l.group
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.leading {
		g.mu.Unlock()
		if r := <-p.done; !r.lead {
			return r.e, r.err
		}
		g.mu.Lock()
	}
	g.leading = true
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	l.write(batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- result{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	r := <-p.done
	return r.e, r.err
}

// write stores the batch's entries in one durable write and tells each
// appender its result. The write goes on if the leader's request is
// cancelled: the others' entries are in it.
func (l *Log) write(batch []*pending) {
	es, err := l.store.AppendEntries(context.WithoutCancel(batch[0].ctx), func(head *Entry) ([]*Entry, error) {
		out := make([]*Entry, len(batch))
		for i, p := range batch {
			out[i] = p.build(head)
			head = out[i]
		}
		return out, nil
	})
	for i, p := range batch {
		if err != nil {
			p.done <- result{err: err}
		} else {
			p.done <- result{e: es[i]}
		}
	}
}

// Redact blanks the readable target of every entry naming the subject
// hash (SubjectHash of an identifier "type:value") and returns how many
// entries it changed. The chain stays valid: hashes cover the target's
// MAC, never the target. Redacting twice changes nothing more.
func (l *Log) Redact(ctx context.Context, subjectHash string) (int, error) {
	if l == nil {
		return 0, nil
	}
	if _, err := hex.DecodeString(subjectHash); err != nil || len(subjectHash) != 64 {
		return 0, fmt.Errorf("audit: redact: %w", graph.FieldErrorf("subjectHash", "is not a hex SHA-256 HMAC"))
	}
	n, err := l.store.RedactEntries(ctx, strings.ToLower(subjectHash), l.now())
	if err != nil {
		return 0, fmt.Errorf("audit: redact: %w", err)
	}
	return n, nil
}

// EntriesFor returns the entries naming the subject ("type:value").
func (l *Log) EntriesFor(ctx context.Context, subject string) ([]*Entry, error) {
	es, err := l.store.EntriesFor(ctx, l.SubjectHash(subject))
	if err != nil {
		return nil, fmt.Errorf("audit: entries for a subject: %w", err)
	}
	return es, nil
}

// Break is the first broken link Verify found.
type Break struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", b.Seq, b.Reason)
}

// Report is what Verify found.
type Report struct {
	Entries  int    `json:"entries"`
	Redacted int    `json:"redacted"`
	Head     string `json:"head,omitempty"`
	Broken   *Break `json:"broken,omitempty"`
}

// Verify reads the whole chain in order and checks every link: sequence
// numbers without gaps from 1, each entry's Prev equal to the previous
// entry's Hash, its Hash equal to the hash of its canonical bytes, and,
// when key is given, each readable target matching its MAC. It stops at
// the first broken link. A chain cut at its end (entries deleted from the
// head) cannot be told from a shorter one: compare Report.Head with a
// head recorded elsewhere.
func Verify(ctx context.Context, store Store, key []byte) (*Report, error) {
	rep := &Report{}
	prev, seq := Genesis, uint64(0)
	for {
		es, err := store.Entries(ctx, seq, 1000)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		for _, e := range es {
			if b := check(e, seq+1, prev, key); b != nil {
				rep.Broken = b
				return rep, nil
			}
			rep.Entries++
			if !e.Redacted.IsZero() {
				rep.Redacted++
			}
			prev, seq = e.Hash, e.Seq
			rep.Head = e.Hash
		}
		if len(es) < 1000 {
			return rep, nil
		}
	}
}

func check(e *Entry, seq uint64, prev string, key []byte) *Break {
	switch {
	case e.Seq != seq:
		return &Break{Seq: seq, Reason: fmt.Sprintf("entry %d is missing (the next stored is %d)", seq, e.Seq)}
	case e.Prev != prev:
		return &Break{Seq: e.Seq, Reason: fmt.Sprintf("its prev does not match the hash of entry %d (one of the two was changed)", e.Seq-1)}
	case e.Hash != e.ComputeHash():
		return &Break{Seq: e.Seq, Reason: "its content does not match its hash"}
	case key != nil && e.Redacted.IsZero() && !hmac.Equal([]byte(mac(key, e.Target)), []byte(e.TargetMAC)):
		return &Break{Seq: e.Seq, Reason: "its target does not match the target's MAC"}
	case !e.Redacted.IsZero() && e.Target != "":
		return &Break{Seq: e.Seq, Reason: "it is marked redacted but has a target"}
	}
	return nil
}

// Marshal and Unmarshal are the stored form of an entry (both backends).
func Marshal(e *Entry) ([]byte, error) { return json.Marshal(e) }

// Unmarshal parses an entry's stored form.
func Unmarshal(data []byte) (*Entry, error) {
	e := &Entry{}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(e); err != nil {
		return nil, fmt.Errorf("corrupt audit entry: %w", err)
	}
	return e, nil
}

// Redact applies RedactEntries' rule to an entry in memory; it reports
// whether anything changed.
func RedactEntry(e *Entry, at time.Time) bool {
	if !e.Redacted.IsZero() {
		return false
	}
	e.Target, e.Redacted = "", at
	return true
}

// FollowAll checks that es may be stored after head, each after the one
// before it (Follows). Backends call it before they write.
func FollowAll(head *Entry, es []*Entry) error {
	for _, e := range es {
		if err := Follows(head, e); err != nil {
			return err
		}
		head = e
	}
	return nil
}

// Follows checks that e may be stored after head (nil: the chain is
// empty): the next sequence number, linked to the head's hash.
func Follows(head, e *Entry) error {
	seq, prev := uint64(1), Genesis
	if head != nil {
		seq, prev = head.Seq+1, head.Hash
	}
	if e.Seq != seq || e.Prev != prev {
		return fmt.Errorf("entry %d does not follow the head (%d)", e.Seq, seq-1)
	}
	return nil
}
