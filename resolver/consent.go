package resolver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/idgraph/idgraph/consent"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/schema"
)

// consentChecker returns the consent check, or says the store keeps none.
func (r *Resolver) consentChecker() (*consent.Checker, error) {
	if r.Consent == nil {
		return nil, graph.Errorf(graph.KindInvalid, "this store keeps no consent records")
	}
	return r.Consent, nil
}

// consentTarget resolves exactly one of profileId and subject to the live
// profile (and the subject's key, when given).
func (r *Resolver) consentTarget(ctx context.Context, profileID *string, subject *schema.IdentifierInput) (*graph.Profile, *graph.Key, error) {
	switch {
	case (profileID == nil) == (subject == nil):
		return nil, nil, graph.FieldErrorf("profileId", "give exactly one of profileId and subject")
	case profileID != nil:
		p, err := live(ctx, *profileID)
		if err != nil {
			return nil, nil, err
		}
		return p.Profile, nil, nil
	}
	k, err := r.normalizeInput(*subject, "subject")
	if err != nil {
		return nil, nil, err
	}
	p, err := r.profileOfKey(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	return p.Profile, &k, nil
}

// profileConsent answers the consent query for a profile at now.
func (r *Resolver) profileConsent(ctx context.Context, c *consent.Checker, p *graph.Profile, now time.Time) (*schema.ProfileConsent, error) {
	recs, err := c.Records(ctx, p)
	if err != nil {
		return nil, err
	}
	out := &schema.ProfileConsent{ProfileID: p.ID, Current: []*schema.PurposeConsent{}, History: make([]*schema.ConsentRecord, len(recs))}
	for _, ps := range consent.Current(recs, c.Purposes.Names(), now) {
		out.Current = append(out.Current, &schema.PurposeConsent{Purpose: ps[0], State: schema.ConsentState(ps[1]), Configured: c.Purposes.Configured(ps[0])})
	}
	for i, rec := range recs {
		out.History[i] = &schema.ConsentRecord{ID: rec.ID, Subject: &rec.Key, Purpose: rec.Purpose, Status: schema.ConsentStatus(rec.Status),
			Time: rec.Time, ExpiresAt: optionalTime(rec.Expires), Source: rec.Source}
		if rec.RecordedBy != "" {
			out.History[i].RecordedBy = &rec.RecordedBy
		}
	}
	return out, nil
}

// recordConsent stores an explicit choice: on the subject alone, or on
// every identifier of the profile.
func (r *Resolver) recordConsent(ctx context.Context, profileID *string, subject *schema.IdentifierInput, purpose string, status schema.ConsentStatus, expiresAt *time.Time) (*schema.ProfileConsent, error) {
	actor, err := steward(ctx)
	if err != nil {
		return nil, err
	}
	c, err := r.consentChecker()
	if err != nil {
		return nil, err
	}
	if err := c.Purposes.Require(purpose); err != nil {
		return nil, err
	}
	if !status.IsValid() {
		return nil, graph.FieldErrorf("status", "must be GRANTED or DENIED")
	}
	now := time.Now().UTC()
	if expiresAt != nil && !expiresAt.After(now) {
		return nil, graph.FieldErrorf("expiresAt", "must be in the future")
	}
	p, k, err := r.consentTarget(ctx, profileID, subject)
	if err != nil {
		return nil, err
	}
	keys := []graph.Key{}
	if k != nil {
		keys = append(keys, *k)
	} else {
		ids, err := graph.ProfileIdentifiers(ctx, r.Reader, p)
		if err != nil {
			return nil, err
		}
		for _, n := range ids {
			keys = append(keys, n.Key)
		}
	}
	var b [12]byte
	rand.Read(b[:])
	id := "api-" + hex.EncodeToString(b[:])
	recs := make([]consent.Record, len(keys))
	for i, key := range keys {
		recs[i] = consent.Record{ID: id, Key: key, Purpose: purpose, Status: string(status), Time: now, Source: consent.SourceAPI, RecordedBy: actor}
		if expiresAt != nil {
			recs[i].Expires = expiresAt.UTC()
		}
	}
	if err := c.Store.AppendConsent(ctx, recs); err != nil {
		return nil, err
	}
	return r.profileConsent(ctx, c, p, now)
}

// consentPage filters a page of profiles for a purpose, counting the
// withheld by reason (purpose nil: every profile passes, no counts).
func (r *Resolver) consentPage(ctx context.Context, purpose *string, ps []*graph.Profile) ([]bool, []*schema.ConsentWithheld, error) {
	keep := make([]bool, len(ps))
	if purpose == nil {
		for i := range keep {
			keep[i] = true
		}
		return keep, nil, nil
	}
	c, err := r.consentChecker()
	if err != nil {
		return nil, nil, graph.FieldErrorf("purpose", "%s", graph.ErrorMessage(err))
	}
	counts := map[string]int{}
	now := time.Now().UTC()
	for i, p := range ps {
		d, err := c.Check(ctx, p, *purpose, now)
		if err != nil {
			return nil, nil, err
		}
		keep[i] = d.Allowed
		if !d.Allowed {
			counts[d.Reason]++
			if r.Withheld != nil {
				r.Withheld("segment_members", *purpose, d.Reason)
			}
		}
	}
	return keep, withheldCounts(counts), nil
}

// withheldCounts lists a count for every reason, in consent.Reasons order.
func withheldCounts[N int | int64](counts map[string]N) []*schema.ConsentWithheld {
	out := make([]*schema.ConsentWithheld, len(consent.Reasons))
	for i, reason := range consent.Reasons {
		out[i] = &schema.ConsentWithheld{Reason: reason, Count: int(counts[reason])}
	}
	return out
}
