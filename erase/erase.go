// Package erase removes a person from the identity graph and keeps them
// out: erasure deletes a whole profile (every merged profile, identifier,
// event, edge, trait, computed trait, segment membership, review item,
// merge and steward entry, hub marking and blocking entry) in one
// transaction per backend; suppression remembers a keyed hash of every
// identifier the person had, and ingest drops any later message that
// carries one; a receipt per request says what was done; and a ledger
// kept outside the data store re-applies erasures to a restored backup.
//
// Nothing here keeps a personal value: subjects and identifiers are kept
// only as HMAC-SHA256 under the pepper (docs/security.md, "Erasure and
// suppression").
package erase

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// Mode says what a request does.
type Mode string

// Modes. EraseAndSuppress is the default.
const (
	EraseAndSuppress Mode = "ERASE_AND_SUPPRESS"
	EraseOnly        Mode = "ERASE_ONLY"
	SuppressOnly     Mode = "SUPPRESS_ONLY"
	Unsuppress       Mode = "UNSUPPRESS"
)

// ParseMode reads a mode name; "" is EraseAndSuppress.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(strings.TrimSpace(s))); m {
	case "":
		return EraseAndSuppress, nil
	case EraseAndSuppress, EraseOnly, SuppressOnly, Unsuppress:
		return m, nil
	}
	return "", graph.FieldErrorf("mode", "mode %q is not one of ERASE_AND_SUPPRESS, ERASE_ONLY, SUPPRESS_ONLY, UNSUPPRESS", s)
}

func (m Mode) erases() bool     { return m == EraseAndSuppress || m == EraseOnly }
func (m Mode) suppresses() bool { return m == EraseAndSuppress || m == SuppressOnly }

// ExitReason is the reason of the segment exit records an erasure writes,
// so that destinations learn that the member is gone.
const ExitReason = segments.ReasonErased

// Kinds of records an erasure counts (Erased.Counts, Receipt.Deleted).
const (
	CountProfiles       = "profiles"
	CountIdentifiers    = "identifiers"
	CountEdges          = "edges"
	CountEvents         = "events"
	CountMerges         = "merges"
	CountAudit          = "auditEntries"
	CountHubs           = "hubs"
	CountBlocks         = "blockingEntries"
	CountSearch         = "searchEntries"
	CountSegmentStates  = "segmentStates"
	CountMemberships    = "segmentMemberships"
	CountTimers         = "segmentTimers"
	CountPendingChanges = "pendingChanges"
	CountConsent        = "consentRecords"
)

// Request is one erasure as a backend carries it out.
type Request struct {
	// ID is the request's ID, kept with the suppression entries.
	ID string
	// Profile is any profile of the person, live or absorbed.
	Profile string
	At      time.Time
	// Suppress, when set, gives the suppression hash of an identifier: the
	// backend stores one for every identifier it erases, in the same
	// transaction.
	Suppress func(graph.Key) string
	// Reason is the reason of the segment exit records written (ExitReason
	// when empty): a retention expiry writes segments.ReasonExpired.
	Reason string
	// InactiveBefore, when set, erases the person only if their live
	// profile was last updated before it, checked in the transaction: a
	// retention expiry must not delete a profile that an ingest touched
	// since it was found inactive.
	InactiveBefore time.Time
}

// ExitReason is the reason of the exit records req writes.
func (req Request) ExitReason() string {
	if req.Reason != "" {
		return req.Reason
	}
	return ExitReason
}

// Keeps reports whether req leaves the live profile p alone because p was
// updated at or after req.InactiveBefore.
func (req Request) Keeps(p *graph.Profile) bool {
	return !req.InactiveBefore.IsZero() && !p.UpdatedAt.Before(req.InactiveBefore)
}

// Erased is what a backend erased.
type Erased struct {
	// Profiles are the profile IDs removed (the live one first).
	Profiles []string
	// Identifiers are the identifiers removed.
	Identifiers []graph.Key
	// Counts counts the records removed by kind (Count* names).
	Counts map[string]int
	// Suppressed are the suppression hashes stored.
	Suppressed []string
	// Exits are the segment exit records written (reason "erased").
	Exits int
}

// Store is what a backend provides for erasure and suppression. Every
// backend passes erase/storetest.
type Store interface {
	// ErasePerson deletes the person that req.Profile belongs to, in one
	// transaction. A profile that is not stored erases nothing (no error):
	// erasure is idempotent.
	ErasePerson(ctx context.Context, req Request) (*Erased, error)
	// AddSuppressions stores the hashes for the request (existing ones are
	// kept, with their first request).
	AddSuppressions(ctx context.Context, request string, hashes []string) error
	// RemoveSuppressions deletes the hashes.
	RemoveSuppressions(ctx context.Context, hashes []string) error
	// Suppressions returns every suppression hash with the request that
	// stored it.
	Suppressions(ctx context.Context) (map[string]string, error)
	// SuppressionChanges returns the suppression hashes added and removed
	// by the changes numbered above after (ErasePerson, AddSuppressions
	// and RemoveSuppressions each number one), each as it is now, and the
	// number of the last change: servers sharing a store poll it to hear
	// of each other's erasures (Set.Refresh). Numbers only grow while the
	// store is open.
	SuppressionChanges(ctx context.Context, after int64) (SuppressionChanges, error)
	// SuppressionsOf returns those of the hashes that are stored, with
	// the request that stored each, by keyed lookups (unsuppressing one
	// person reads nothing of anyone else's).
	SuppressionsOf(ctx context.Context, hashes []string) (map[string]string, error)
	// PutReceipt stores (or replaces) a receipt.
	PutReceipt(ctx context.Context, r *Receipt) error
	// Receipt returns one receipt, or a not_found error.
	Receipt(ctx context.Context, id string) (*Receipt, error)
}

// SuppressionChanges is what changed in the suppression entries after a
// change number.
type SuppressionChanges struct {
	// Seq is the number of the last change read.
	Seq int64
	// Added are hashes suppressed now; Removed, hashes no longer
	// suppressed.
	Added, Removed []string
}

// Backend is a graph store that also stores erasures.
type Backend interface {
	Erasure() Store
}

// Hasher computes suppression hashes: HMAC-SHA256(pepper, "type:value"),
// in hex.
type Hasher struct{ pepper []byte }

// NewHasher returns a hasher under the pepper.
func NewHasher(pepper []byte) Hasher { return Hasher{pepper: append([]byte(nil), pepper...)} }

// Sum returns the raw MAC of k.
func (h Hasher) Sum(k graph.Key) [32]byte {
	m := hmac.New(sha256.New, h.pepper)
	m.Write([]byte(k.Type))
	m.Write([]byte{':'})
	m.Write([]byte(k.Value))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Hash returns the hex MAC of k, the form stored and logged.
func (h Hasher) Hash(k graph.Key) string {
	s := h.Sum(k)
	return hex.EncodeToString(s[:])
}

// SubjectHash is the hash of a profile ID subject (audit and receipts).
func (h Hasher) SubjectHash(profileID string) string {
	return h.Hash(graph.Key{Type: "profile", Value: profileID})
}
