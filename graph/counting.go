package graph

import "context"

// CountingReader calls Count with each method's name before passing the
// call on: for store-call metrics, and for tests that a query makes a
// bounded number of store calls.
type CountingReader struct {
	R     Reader
	Count func(method string)
}

var _ Reader = CountingReader{}

func (c CountingReader) Identifier(ctx context.Context, k Key) (*Identifier, error) {
	c.Count("Identifier")
	return c.R.Identifier(ctx, k)
}

func (c CountingReader) Profile(ctx context.Context, id string) (*Profile, error) {
	c.Count("Profile")
	return c.R.Profile(ctx, id)
}

func (c CountingReader) GetIdentifiers(ctx context.Context, keys []Key) ([]*Identifier, error) {
	c.Count("GetIdentifiers")
	return c.R.GetIdentifiers(ctx, keys)
}

func (c CountingReader) GetProfiles(ctx context.Context, ids []string) ([]*Profile, error) {
	c.Count("GetProfiles")
	return c.R.GetProfiles(ctx, ids)
}

func (c CountingReader) IdentifiersOf(ctx context.Context, ps []*Profile) ([][]*Identifier, error) {
	c.Count("IdentifiersOf")
	return c.R.IdentifiersOf(ctx, ps)
}

func (c CountingReader) EdgesOf(ctx context.Context, keys []Key) ([]*Edge, error) {
	c.Count("EdgesOf")
	return c.R.EdgesOf(ctx, keys)
}

func (c CountingReader) Profiles(ctx context.Context, after string, limit int) ([]*Profile, error) {
	c.Count("Profiles")
	return c.R.Profiles(ctx, after, limit)
}

func (c CountingReader) ProfilesData(ctx context.Context, ids []string, q DataQuery) ([]*ProfileData, error) {
	c.Count("ProfilesData")
	return c.R.ProfilesData(ctx, ids, q)
}

func (c CountingReader) ScanProfilesData(ctx context.Context, after string, limit int, q DataQuery) ([]*ProfileData, error) {
	c.Count("ScanProfilesData")
	return c.R.ScanProfilesData(ctx, after, limit, q)
}

func (c CountingReader) Timelines(ctx context.Context, qs []TimelineQuery) ([][]*Event, error) {
	c.Count("Timelines")
	return c.R.Timelines(ctx, qs)
}

func (c CountingReader) Merges(ctx context.Context, profileID string) ([]*MergeEvent, error) {
	c.Count("Merges")
	return c.R.Merges(ctx, profileID)
}

func (c CountingReader) Hubs(ctx context.Context) ([]*HubMarking, error) {
	c.Count("Hubs")
	return c.R.Hubs(ctx)
}

func (c CountingReader) Search(ctx context.Context, prefix string, limit int) ([]SearchHit, error) {
	c.Count("Search")
	return c.R.Search(ctx, prefix, limit)
}

func (c CountingReader) MergeEvent(ctx context.Context, id string) (*MergeEvent, error) {
	c.Count("MergeEvent")
	return c.R.MergeEvent(ctx, id)
}

func (c CountingReader) AuditEntry(ctx context.Context, id string) (*AuditEntry, error) {
	c.Count("AuditEntry")
	return c.R.AuditEntry(ctx, id)
}

func (c CountingReader) AuditLog(ctx context.Context, q AuditQuery) ([]*AuditEntry, error) {
	c.Count("AuditLog")
	return c.R.AuditLog(ctx, q)
}

func (c CountingReader) ReviewQueue(ctx context.Context, after string, limit int) ([]QueueItem, error) {
	c.Count("ReviewQueue")
	return c.R.ReviewQueue(ctx, after, limit)
}

func (c CountingReader) CountProfiles(ctx context.Context) (int, error) {
	c.Count("CountProfiles")
	return c.R.CountProfiles(ctx)
}
