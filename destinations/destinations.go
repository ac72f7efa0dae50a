// Package destinations sends segment membership changes and computed
// trait changes to the tools that act on them: webhooks signed with Standard Webhooks v1, delivered at
// least once, in order, by one worker per destination (docs/activation.md).
//
// Deliveries read the durable change records the segments engine writes
// with each membership change (segments.Store.Changes); they never work
// out membership again. The backends (pebble, neo4j) implement Store.
package destinations

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
)

// Destination is a webhook receiver and the segments connected to it.
type Destination struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
	// Kind is KindWebhook ("" in records written before kinds) or
	// KindSegment.
	Kind string `json:"kind,omitempty"`
	// Segments maps each connected segment's key to when it was
	// connected: changes recorded before then are not sent (a resync job
	// sends a segment's current members).
	Segments map[string]time.Time `json:"segments,omitempty"`
	// Traits maps each connected computed trait's key to when it was
	// connected, as Segments: its value changes are sent as trait.changed.
	Traits  map[string]time.Time `json:"traits,omitempty"`
	Enabled bool                 `json:"enabled"`
	// DisabledReason says why a destination stopped: "by an admin", or
	// the 410 Gone its receiver answered.
	DisabledReason string `json:"disabledReason,omitempty"`
	// SealedSecret is the signing secret encrypted with a key derived from
	// the pepper (Sealer): the secret must be readable to sign, so it
	// cannot be stored as a hash like API keys.
	SealedSecret []byte `json:"sealedSecret"`
	// Purpose, when set, is the consent purpose of the deliveries: a
	// profile enters the destination only if its consent for it is
	// granted when the record is sent (docs/security.md, Consent); exits
	// are always sent, so a revocation removes the person downstream.
	Purpose string `json:"purpose,omitempty"`
	// Identifiers is the identifier policy of its entries (nil: none are
	// sent, as before policies; sent.go).
	Identifiers *IdentifierPolicy `json:"identifierPolicy,omitempty"`
	// Channel, when set, names the kind of contact the destination makes
	// ("email", "sms", "ads", …): suppression list entries scoped to the
	// channel withhold its deliveries (suppress.go).
	Channel string `json:"channel,omitempty"`
	// ReplayFrom asks the worker to send again every wanted record from
	// this sequence on (0: no replay asked); the worker rewinds its cursor
	// and clears it.
	ReplayFrom uint64 `json:"replayFrom,omitempty"`
	// PreviousSealedSecret is the secret a rotation replaced; messages
	// carry its signature too until PreviousUntil, so that receivers can
	// change secrets without refusing a delivery.
	// BatchSize is how many records a webhook request carries at most (0
	// or 1: one message per request; Batches).
	BatchSize            int       `json:"batchSize,omitempty"`
	PreviousSealedSecret []byte    `json:"previousSealedSecret,omitempty"`
	PreviousUntil        time.Time `json:"previousUntil,omitzero"`
	CreatedAt            time.Time `json:"createdAt"`
	UpdatedAt            time.Time `json:"updatedAt"`
}

// SegmentKeys returns the connected segments, sorted.
func (d *Destination) SegmentKeys() []string {
	out := make([]string, 0, len(d.Segments))
	for k := range d.Segments {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Wants reports whether the destination is sent a change record: one of
// a connected segment or computed trait, recorded since it was connected.
func (d *Destination) Wants(c *segments.ChangeRecord) bool {
	at, ok := d.Segments[c.Segment]
	if c.IsTrait() {
		at, ok = d.Traits[c.Trait]
	}
	return ok && !c.Time.Before(at)
}

// Cursor is a destination's delivery state over the change records:
// every record up to After is delivered, dead-lettered or not wanted;
// Head is the attempt state of the next wanted record, if it failed.
type Cursor struct {
	Destination string `json:"destination"`
	After       uint64 `json:"after"`
	Head        *Head  `json:"head,omitempty"`
	// Counters for health, since the destination was created.
	Delivered    int64 `json:"delivered"`
	FailedTries  int64 `json:"failedTries"`
	DeadLettered int64 `json:"deadLettered"`
	// Skipped counts records a forwarder did not send: no ID to address
	// the profile by, or a merge exit its survivor covers.
	Skipped       int64     `json:"skipped,omitempty"`
	LastSuccessAt time.Time `json:"lastSuccessAt,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
	LastErrorAt   time.Time `json:"lastErrorAt,omitzero"`
	// Withheld counts the entries not sent for want of consent, by reason.
	Withheld map[string]int64 `json:"withheld,omitempty"`
	// Epoch is the lease epoch of the worker that wrote the cursor: the
	// store refuses the write when the lease has moved on (Fenced).
	Epoch uint64 `json:"epoch,omitempty"`
}

// Head is the retry state of the record a destination is stuck on.
type Head struct {
	Sequence   uint64    `json:"sequence"`
	Attempts   int       `json:"attempts"`
	FirstTryAt time.Time `json:"firstTryAt"`
	NextAt     time.Time `json:"nextAt"`
	LastStatus int       `json:"lastStatus,omitempty"` // 0: no answer
	LastError  string    `json:"lastError,omitempty"`
	// Last is the last record of the batch being sent (0: one record):
	// stored before the first attempt, so that every retry, after a
	// restart too, sends the same records under the same webhook-id.
	Last uint64 `json:"last,omitempty"`
}

// DeadLetter is a record that was given up on after the whole retry
// schedule, with the last answer.
type DeadLetter struct {
	Destination string                `json:"destination"`
	Record      segments.ChangeRecord `json:"record"`
	Attempts    int                   `json:"attempts"`
	LastStatus  int                   `json:"lastStatus,omitempty"`
	LastError   string                `json:"lastError,omitempty"`
	At          time.Time             `json:"at"`
}

// Store keeps destinations and their delivery state. Every backend
// implements it (see destinations/storetest).
type Store interface {
	// CreateDestination stores a new destination; an id already there is
	// a conflict error.
	CreateDestination(ctx context.Context, d *Destination) error
	// Destination returns one destination, or a not_found error.
	Destination(ctx context.Context, id string) (*Destination, error)
	// Destinations returns every destination, oldest first.
	Destinations(ctx context.Context) ([]*Destination, error)
	// UpdateDestination applies fn to the stored destination and writes
	// the result, atomically (fn may run more than once); fn's error is
	// returned and nothing is written. An unknown id is not_found.
	UpdateDestination(ctx context.Context, id string, fn func(*Destination) error) (*Destination, error)
	// Cursor returns a destination's delivery state; one never written is
	// the zero cursor (After 0).
	Cursor(ctx context.Context, destination string) (*Cursor, error)
	// PutCursor replaces a destination's delivery state. A cursor with an
	// Epoch is written only while that is the destination's lease epoch,
	// else it is a conflict error (Fenced), atomically with the check.
	PutCursor(ctx context.Context, c *Cursor) error
	// PutRetryState writes a cursor as PutCursor does (fenced alike) when
	// only its retry state and counters changed since the last PutCursor,
	// not After: the write need not be durable when it returns. A crash
	// may lose it, leaving an earlier state of the cursor (never a later
	// one, nor a mix), and a later PutCursor makes it durable. What it
	// holds can be lost: an older Head means an earlier retry of an
	// at-least-once delivery (worker.failed).
	PutRetryState(ctx context.Context, c *Cursor) error
	// TryLease takes the destination's lease for owner for ttl, or renews
	// it when owner holds it (NextLease, by the store's clock): held
	// reports whether owner has it now; the lease returned is the
	// holder's.
	TryLease(ctx context.Context, destination, owner string, ttl time.Duration) (l *Lease, held bool, err error)
	// ReleaseLease ends owner's lease at epoch now, so that another process
	// takes over without waiting for it to expire; a lease owner no longer
	// holds at that epoch is left alone.
	ReleaseLease(ctx context.Context, destination, owner string, epoch uint64) error
	// PutDeadLetter stores a dead letter; storing one for the same
	// (destination, sequence) again replaces it.
	PutDeadLetter(ctx context.Context, dl *DeadLetter) error
	// DeadLetters pages through a destination's dead letters by sequence.
	DeadLetters(ctx context.Context, destination string, after uint64, limit int) ([]*DeadLetter, error)
	// DeleteDeadLetter removes a dead letter (one redelivered); removing
	// one that is not there does nothing.
	DeleteDeadLetter(ctx context.Context, destination string, sequence uint64) error
	// Jobs and the log of delivery attempts (jobs.go).
	JobStore
}

// Backend is implemented by graph stores that also keep destinations.
type Backend interface {
	Destinations() Store
}

// SortDestinations orders destinations oldest first (ties by id), as
// Destinations returns them.
func SortDestinations(ds []*Destination) {
	slices.SortFunc(ds, func(a, b *Destination) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// MaxNameLen and MaxURLLen bound a destination's name and URL (bytes).
const (
	MaxNameLen = 200
	MaxURLLen  = 2048
)

// CheckName refuses an empty, overlong or non-UTF-8 name.
func CheckName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return graph.FieldErrorf("name", "a name is 1 to %d bytes of UTF-8", MaxNameLen)
	}
	return nil
}

// URLPolicy says which destination URLs are allowed beyond public https
// ones. The same policy is applied again to every address a URL
// resolves to, when connecting (Client).
type URLPolicy struct {
	// AllowHTTP allows plain http:// URLs (the payloads are signed, not
	// encrypted).
	AllowHTTP bool
	// AllowPrivate allows loopback, private, link-local and other
	// non-public addresses (tests, and receivers on the same network).
	AllowPrivate bool
}

// CheckURL refuses a URL that is malformed, not http(s), carries
// credentials, or names a forbidden address literally. A host name is
// checked again when connecting, against what it resolves to then.
func (p URLPolicy) CheckURL(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > MaxURLLen {
		return nil, graph.FieldErrorf("url", "a URL is 1 to %d bytes", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, graph.FieldErrorf("url", "not a URL: %v", err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return nil, graph.FieldErrorf("url", "only https URLs are allowed (the server was not started with --destinations-allow-http)")
	default:
		return nil, graph.FieldErrorf("url", "scheme %q: only https (or http when allowed)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, graph.FieldErrorf("url", "the URL has no host")
	}
	if u.User != nil {
		return nil, graph.FieldErrorf("url", "credentials in the URL would be shown to every admin: the signature authenticates requests")
	}
	if u.Fragment != "" {
		return nil, graph.FieldErrorf("url", "a URL with a #fragment")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if err := p.checkIP(ip); err != nil {
			return nil, graph.FieldErrorf("url", "%v", err)
		}
	} else if h := strings.ToLower(strings.TrimSuffix(host, ".")); (h == "localhost" || strings.HasSuffix(h, ".localhost")) && !p.AllowPrivate {
		return nil, graph.FieldErrorf("url", "%s is a loopback name: private addresses are refused (--destinations-allow-private)", host)
	}
	return u, nil
}

// checkIP refuses an address that is not public unicast, unless allowed.
func (p URLPolicy) checkIP(ip net.IP) error {
	if p.AllowPrivate {
		return nil
	}
	if ip4 := ip.To4(); ip4 != nil {
		ip = ip4
	}
	switch {
	case ip.IsLoopback():
		return fmt.Errorf("%s is a loopback address: private addresses are refused (--destinations-allow-private)", ip)
	case ip.IsPrivate(), isShared(ip):
		return fmt.Errorf("%s is a private address: private addresses are refused (--destinations-allow-private)", ip)
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		// 169.254.169.254 is the cloud metadata service.
		return fmt.Errorf("%s is a link-local address: refused", ip)
	case ip.IsUnspecified(), ip.IsMulticast(), ip.IsInterfaceLocalMulticast(), !ip.IsGlobalUnicast():
		return fmt.Errorf("%s is not a public unicast address: refused", ip)
	}
	return nil
}

// isShared reports 100.64.0.0/10 (carrier-grade NAT), which IsPrivate
// does not cover, and IPv4-mapped or NAT64 forms are normalised by To4.
func isShared(ip net.IP) bool {
	return len(ip) == net.IPv4len && ip[0] == 100 && ip[1]&0xc0 == 64
}
