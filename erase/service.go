package erase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// Receipt is the record of one request: only hashes, counts and times,
// never a personal value.
type Receipt struct {
	ID   string `json:"id"`
	Mode Mode   `json:"mode"`
	// SubjectHash is the hash of the subject as given (an identifier's
	// HMAC, or a profile ID's).
	SubjectHash string `json:"subjectHash"`
	// SubjectHashes are the hashes of every identifier the person had
	// when the request ran (what suppression covers).
	SubjectHashes []string `json:"subjectHashes"`
	// Found says whether the subject named a stored person.
	Found bool `json:"found"`
	// Deleted counts the records removed by kind.
	Deleted map[string]int `json:"deleted"`
	// SegmentExits counts the exit records (reason "erased") written.
	SegmentExits        int       `json:"segmentExits"`
	SuppressionsAdded   int       `json:"suppressionsAdded"`
	SuppressionsRemoved int       `json:"suppressionsRemoved"`
	Actor               string    `json:"actor,omitempty"`
	RequestedAt         time.Time `json:"requestedAt"`
	CompletedAt         time.Time `json:"completedAt"`
	// Replayed is set on a receipt written when the ledger re-applied the
	// request to a store restored from before it.
	Replayed bool `json:"replayed,omitempty"`
}

// Service carries out requests: it resolves the subject, erases through
// the store, keeps the suppression set and the ledger, and writes the
// receipt.
type Service struct {
	Store  Store
	Graph  graph.Reader
	Norm   *graph.Normalizer
	Hasher Hasher
	Set    *Set
	// Ledger, when set, records every request before it runs.
	Ledger *Ledger
	// Broker, when set, hears of the erased profiles (caches drop them).
	Broker *graph.Broker
	// Redact, when set, is given the identifiers an erasure removed (and
	// an identifier subject), after the erasure commits: the audit chain
	// blanks what its entries say of them (audit.Log.Redact).
	Redact func(ctx context.Context, keys []graph.Key) error
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Subject is a parsed subject: an identifier or a profile ID.
type Subject struct {
	Key     graph.Key
	Profile string
}

// ParseSubject reads "type:value" (normalised as ingest normalises it) or
// a profile ID ("p_…").
func ParseSubject(norm *graph.Normalizer, s string) (Subject, error) {
	s = strings.TrimSpace(s)
	if typ, val, ok := strings.Cut(s, ":"); ok {
		k, err := norm.Normalize(strings.TrimSpace(typ), val)
		if err != nil && !errors.Is(err, graph.ErrPlaceholder) {
			return Subject{}, graph.FieldErrorf("subject", "subject: %v", err)
		}
		if err != nil {
			// A placeholder is never stored, but may still be suppressed.
			k = graph.Key{Type: strings.TrimSpace(typ), Value: strings.TrimSpace(val)}
		}
		return Subject{Key: k}, nil
	}
	if strings.HasPrefix(s, "p_") && len(s) > 2 && len(s) <= 64 {
		return Subject{Profile: s}, nil
	}
	return Subject{}, graph.FieldErrorf("subject", "subject must be an identifier type:value or a profile ID (p_…)")
}

func (s *Service) subjectHash(sub Subject) string {
	if sub.Profile != "" {
		return s.Hasher.SubjectHash(sub.Profile)
	}
	return s.Hasher.Hash(sub.Key)
}

// person finds the live profile the subject belongs to ("" when none) and
// the hashes of its identifiers.
func (s *Service) person(ctx context.Context, sub Subject) (string, []string, error) {
	id := sub.Profile
	if id == "" {
		n, err := s.Graph.Identifier(ctx, sub.Key)
		if graph.ErrorKind(err) == graph.KindNotFound {
			return "", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		id = n.Profile
	}
	for range 64 {
		p, err := s.Graph.Profile(ctx, id)
		if graph.ErrorKind(err) == graph.KindNotFound {
			return "", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		if p.MergedInto == "" {
			ids, err := graph.ProfileIdentifiers(ctx, s.Graph, p)
			if err != nil {
				return "", nil, err
			}
			hashes := make([]string, 0, len(ids)+1)
			for _, n := range ids {
				hashes = append(hashes, s.Hasher.Hash(n.Key))
			}
			return p.ID, hashes, nil
		}
		id = p.MergedInto
	}
	return "", nil, fmt.Errorf("profile %s: merged-into chain too long", sub.Profile)
}

// Erase carries out one request. It is idempotent: erasing a subject
// that is gone, or suppressing one already suppressed, succeeds with
// nothing more done.
func (s *Service) Erase(ctx context.Context, subject string, mode Mode, actor string) (*Receipt, error) {
	sub, err := ParseSubject(s.Norm, subject)
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	now := s.now()
	id, _ := graph.NewID("erasure", now)
	rc := &Receipt{ID: id, Mode: mode, SubjectHash: s.subjectHash(sub), Deleted: map[string]int{}, Actor: actor, RequestedAt: now}
	if mode == Unsuppress {
		err = s.unsuppress(ctx, rc)
	} else {
		err = s.erase(ctx, sub, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	rc.CompletedAt = s.now()
	if err := s.Store.PutReceipt(ctx, rc); err != nil {
		return nil, fmt.Errorf("erase: receipt: %w", err)
	}
	return rc, nil
}

func (s *Service) erase(ctx context.Context, sub Subject, rc *Receipt) error {
	live, hashes, err := s.person(ctx, sub)
	if err != nil {
		return err
	}
	rc.Found = live != ""
	hashes = appendNew(hashes, rc.SubjectHash)
	if sub.Profile == "" && rc.Mode.suppresses() {
		// An identifier subject is suppressed even when nobody holds it.
		hashes = appendNew(hashes, s.Hasher.Hash(sub.Key))
	}
	// The ledger line and the in-memory set come first: a message that
	// arrives while the transaction runs is already dropped, and a crash
	// after the commit leaves the request in the ledger.
	if s.Ledger != nil {
		if err := s.Ledger.Append(LedgerEntry{Request: rc.ID, Mode: rc.Mode, Hashes: hashes, At: rc.RequestedAt}); err != nil {
			return err
		}
	}
	if rc.Mode.suppresses() {
		s.Set.Add(hashes...)
		if err := s.Store.AddSuppressions(ctx, rc.ID, hashes); err != nil {
			return err
		}
		// Again after the commit: a refresh that read the store before it
		// may have taken them out (Set.Refresh).
		s.Set.Add(hashes...)
	}
	var erased []graph.Key
	if rc.Mode.erases() && live != "" {
		if erased, err = s.eraseProfile(ctx, live, rc, &hashes); err != nil {
			return err
		}
		if err := s.redact(ctx, sub, erased); err != nil {
			return err
		}
	} else if rc.Mode.erases() {
		if err := s.redact(ctx, sub, nil); err != nil {
			return err
		}
	}
	if rc.Mode.suppresses() {
		if err := s.awaitOthers(ctx); err != nil {
			return err
		}
		if rc.Mode.erases() {
			if err := s.sweep(ctx, sub, erased, rc, &hashes); err != nil {
				return err
			}
		}
		rc.SuppressionsAdded = len(hashes)
	}
	rc.SubjectHashes = hashes
	return nil
}

// eraseProfile erases the person of profile id for rc, adds what it
// suppressed beyond *hashes to them, and returns the identifiers erased.
func (s *Service) eraseProfile(ctx context.Context, id string, rc *Receipt, hashes *[]string) ([]graph.Key, error) {
	req := Request{ID: rc.ID, Profile: id, At: rc.RequestedAt}
	if rc.Mode.suppresses() {
		req.Suppress = s.Hasher.Hash
	}
	done, err := s.Store.ErasePerson(ctx, req)
	if err != nil {
		return nil, err
	}
	var extra []string
	for _, h := range done.Suppressed {
		if !slices.Contains(*hashes, h) {
			extra = append(extra, h)
		}
	}
	if len(extra) > 0 {
		// Identifiers that joined between the read and the erasure.
		s.Set.Add(extra...)
		*hashes = append(*hashes, extra...)
		if s.Ledger != nil {
			if err := s.Ledger.Append(LedgerEntry{Request: rc.ID, Mode: rc.Mode, Hashes: extra, At: rc.RequestedAt}); err != nil {
				return nil, err
			}
		}
	}
	for kind, n := range done.Counts {
		rc.Deleted[kind] += n
	}
	rc.SegmentExits += done.Exits
	s.publish(done.Profiles)
	return done.Identifiers, nil
}

// awaitOthers returns once every server following the store has read it
// since the suppressions committed: each answers ingest only from a read
// begun less than MaxAge ago (Set.Current), so after MaxAge every one of
// them drops the person's messages.
func (s *Service) awaitOthers(ctx context.Context) error {
	age := s.Set.MaxAge()
	if age == 0 {
		return nil
	}
	t := time.NewTimer(age)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for other servers to read the suppressions: %w", ctx.Err())
	}
}

// sweep erases again whoever holds one of the erased identifiers (or an
// identifier subject) once other servers must have read the
// suppressions: one that had not yet may have stored a message of the
// person while the erasure ran. Only a following set waited for them.
func (s *Service) sweep(ctx context.Context, sub Subject, keys []graph.Key, rc *Receipt, hashes *[]string) error {
	if s.Set.MaxAge() == 0 {
		return nil
	}
	if sub.Profile == "" {
		keys = append(slices.Clone(keys), sub.Key)
	}
	for _, k := range keys {
		n, err := s.Graph.Identifier(ctx, k)
		if graph.ErrorKind(err) == graph.KindNotFound {
			continue
		}
		if err != nil {
			return err
		}
		again, err := s.eraseProfile(ctx, n.Profile, rc, hashes)
		if err != nil {
			return err
		}
		if err := s.redact(ctx, Subject{Profile: n.Profile}, again); err != nil {
			return err
		}
	}
	return nil
}

// redact passes the erased identifiers, with an identifier subject, to
// Redact.
func (s *Service) redact(ctx context.Context, sub Subject, keys []graph.Key) error {
	if s.Redact == nil {
		return nil
	}
	if sub.Profile == "" && !slices.Contains(keys, sub.Key) {
		keys = append(keys, sub.Key)
	}
	if err := s.Redact(ctx, keys); err != nil {
		return fmt.Errorf("redacting the audit chain: %w", err)
	}
	return nil
}

func (s *Service) publish(ids []string) {
	if s.Broker == nil || len(ids) == 0 {
		return
	}
	at := s.now()
	cs := make([]graph.ProfileChange, len(ids))
	for i, id := range ids {
		cs[i] = graph.ProfileChange{ProfileID: id, Kind: graph.ChangeUpdated, At: at}
	}
	s.Broker.Publish(cs)
}

// unsuppress removes the subject's hash and every hash suppressed by the
// request that suppressed it.
func (s *Service) unsuppress(ctx context.Context, rc *Receipt) error {
	own, err := s.Store.SuppressionsOf(ctx, []string{rc.SubjectHash})
	if err != nil {
		return err
	}
	hashes := []string{rc.SubjectHash}
	if req, ok := own[rc.SubjectHash]; ok {
		if prev, err := s.Store.Receipt(ctx, req); err == nil {
			for _, h := range prev.SubjectHashes {
				hashes = appendNew(hashes, h)
			}
		} else if graph.ErrorKind(err) != graph.KindNotFound {
			return err
		}
	}
	present, err := s.Store.SuppressionsOf(ctx, hashes)
	if err != nil {
		return err
	}
	if s.Ledger != nil {
		if err := s.Ledger.Append(LedgerEntry{Request: rc.ID, Mode: Unsuppress, Hashes: hashes, At: rc.RequestedAt}); err != nil {
			return err
		}
	}
	if err := s.Store.RemoveSuppressions(ctx, hashes); err != nil {
		return err
	}
	s.Set.Remove(hashes...)
	rc.SubjectHashes, rc.SuppressionsRemoved = hashes, len(present)
	return nil
}

// Receipt returns the receipt of a request.
func (s *Service) Receipt(ctx context.Context, id string) (*Receipt, error) {
	r, err := s.Store.Receipt(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("erasure receipt: %w", err)
	}
	return r, nil
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}
