package destinations

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"time"

	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/segments"
	"github.com/idgraph/idgraph/segments/lang"
)

// Job kinds.
const (
	// JobResync sends a destination the current members of its segments
	// (segment.entered, reason resync) and exits for the profiles its sent
	// state holds in them that are not members now, and its computed
	// traits' values (null for a value it holds that is missing now).
	JobResync = "resync"
	// JobReplay sends again the records of a time range, with their
	// original webhook ids.
	JobReplay = "replay"
)

// Job states.
const (
	JobQueued  = "QUEUED"
	JobRunning = "RUNNING"
	JobDone    = "DONE"
	JobFailed  = "FAILED"
)

// ReasonResync is the reason of the messages a resync sends.
const ReasonResync = "resync"

// Job is a durable piece of delivery work for one destination, run by the
// destination's worker, one at a time and oldest first, between its
// regular deliveries. Its position is stored after every page, so a
// restart resumes it; what it sent again after a crash carries the same
// webhook ids.
type Job struct {
	ID          string `json:"id"`
	Destination string `json:"destination"`
	Kind        string `json:"kind"`
	// Segments are a resync's segments (the one asked for, or every
	// segment connected when it was asked).
	Segments []string `json:"segments,omitempty"`
	// Traits are a resync's computed traits, resynced after the segments.
	Traits []string `json:"traits,omitempty"`
	State  string   `json:"state"`
	Error  string   `json:"error,omitempty"`
	Done   int64    `json:"done"`
	Total  int64    `json:"total"`
	// From, To (half-open, on record time) and the sequences they map to
	// (FromSequence to ToSequence, inclusive) bound a replay.
	From         time.Time `json:"from,omitzero"`
	To           time.Time `json:"to,omitzero"`
	FromSequence uint64    `json:"fromSequence,omitempty"`
	ToSequence   uint64    `json:"toSequence,omitempty"`
	// AsOf is the newest change record when a resync started: its
	// messages carry it as their sequence, so a receiver keeping the
	// highest sequence per (segment, profile) lets later changes win.
	AsOf uint64 `json:"asOf,omitempty"`
	// The resume point: a resync's segment (index into Segments, then
	// Traits), phase (entered, then exited; a trait's values, then its
	// nulls) and last profile sent (entered: the last member, or the last
	// state looked at; exited: the last row of the sent state looked
	// at); a replay's last sequence sent.
	Segment  int    `json:"segment,omitempty"`
	Phase    string `json:"phase,omitempty"`
	After    string `json:"after,omitempty"`
	AfterSeq uint64 `json:"afterSequence,omitempty"`
	// Attempts and NextAt retry a failed message on the retry schedule;
	// after the whole schedule the job fails.
	Attempts   int       `json:"attempts,omitempty"`
	NextAt     time.Time `json:"nextAt,omitzero"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Finished reports a job done or failed.
func (j *Job) Finished() bool { return j.State == JobDone || j.State == JobFailed }

// JobStore keeps delivery jobs and the bounded log of delivery attempts.
// Every backend implements it as part of Store (see destinations/storetest).
type JobStore interface {
	// PutJob stores a job, replacing the one with its (destination, id).
	PutJob(ctx context.Context, j *Job) error
	// Jobs returns a destination's jobs, oldest first (ties by id).
	Jobs(ctx context.Context, destination string) ([]*Job, error)
	// DeleteJob removes a job; removing one that is not there does nothing.
	DeleteJob(ctx context.Context, destination, id string) error
	// AppendDelivery adds an attempt to the destination's log, giving it
	// the next N (from 1), and drops the entries older than the newest
	// keep.
	AppendDelivery(ctx context.Context, d *Delivery, keep int) error
	// Deliveries pages through the log newest first: the entries with N
	// below before (0: from the newest).
	Deliveries(ctx context.Context, destination string, before uint64, limit int) ([]*Delivery, error)
}

// SortJobs orders jobs oldest first (ties by id), as Jobs returns them.
func SortJobs(js []*Job) {
	slices.SortFunc(js, func(a, b *Job) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// Resync queues a job sending the destination its current state: an
// entry (reason resync) for every member of a segment and an exit for
// every profile the destination's sent state holds in it that is no
// longer a member; for a computed trait, its value for every profile that
// has one and null for every profile the sent state holds a value of
// that has none now. It covers the segment and the trait named, or, when
// both are "", every connected segment and computed trait.
func (m *Manager) Resync(ctx context.Context, id, segment, trait string) (*Job, error) {
	d, err := m.o.Store.Destination(ctx, id)
	if err != nil {
		return nil, err
	}
	segs, traits := d.SegmentKeys(), d.TraitKeys()
	if segment != "" || trait != "" {
		segs, traits = nil, nil
	}
	if segment != "" {
		if _, ok := d.Segments[segment]; !ok {
			return nil, graph.FieldErrorf("segment", "segment %q is not connected to destination %s", segment, id)
		}
		segs = []string{segment}
	}
	if trait != "" {
		if _, ok := d.Traits[trait]; !ok {
			return nil, graph.FieldErrorf("trait", "computed trait %q is not connected to destination %s", trait, id)
		}
		traits = []string{trait}
	}
	if len(segs) == 0 && len(traits) == 0 {
		return nil, graph.FieldErrorf("destination", "destination %s has no connected segment or computed trait to resync", id)
	}
	return m.queueJob(ctx, &Job{Destination: id, Kind: JobResync, Segments: segs, Traits: traits})
}

// ReplayRange queues a job sending again, with their original webhook ids,
// the records the destination wants whose time is in [from, to). The
// range is mapped to sequences when queued, by the record times, which
// grow with the sequence.
func (m *Manager) ReplayRange(ctx context.Context, id string, from, to time.Time) (*Job, error) {
	if from.IsZero() || to.IsZero() {
		return nil, graph.FieldErrorf("from", "a replay by time needs both from and to")
	}
	if !from.Before(to) {
		return nil, graph.FieldErrorf("to", "the range is reversed or empty: to (%s) must be after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if _, err := m.o.Store.Destination(ctx, id); err != nil {
		return nil, err
	}
	last, err := m.o.Segments.LastChange(ctx)
	if err != nil {
		return nil, fmt.Errorf("destinations: replay: %w", err)
	}
	lo, err := m.firstRecordAt(ctx, from, last)
	if err != nil {
		return nil, err
	}
	hi, err := m.firstRecordAt(ctx, to, last)
	if err != nil {
		return nil, err
	}
	return m.queueJob(ctx, &Job{Destination: id, Kind: JobReplay, From: from.UTC(), To: to.UTC(), FromSequence: lo, ToSequence: hi - 1})
}

// firstRecordAt returns the sequence of the first record whose time is at
// or after t (last+1 when there is none), by binary search over the
// sequences: O(log n) reads.
func (m *Manager) firstRecordAt(ctx context.Context, t time.Time, last uint64) (uint64, error) {
	// The first record after a is at or after t, or there is none: false
	// then true as a grows.
	atOrAfter := func(a uint64) (*segments.ChangeRecord, bool, error) {
		rs, err := m.o.Segments.Changes(ctx, a, 1)
		if err != nil {
			return nil, false, fmt.Errorf("destinations: replay: %w", err)
		}
		if len(rs) == 0 {
			return nil, true, nil
		}
		return rs[0], !rs[0].Time.Before(t), nil
	}
	lo, hi := uint64(0), last
	for lo < hi {
		mid := lo + (hi-lo)/2
		_, ok, err := atOrAfter(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	r, _, err := atOrAfter(lo)
	if err != nil || r == nil {
		return last + 1, err
	}
	return r.Sequence, nil
}

// KeepFinishedJobs is how many finished jobs a destination keeps: older
// ones are deleted when a job is queued, so the worker, which reads the
// list at every step, reads a bounded one.
const KeepFinishedJobs = 50

func (m *Manager) queueJob(ctx context.Context, j *Job) (*Job, error) {
	js, err := m.o.Store.Jobs(ctx, j.Destination)
	if err != nil {
		return nil, fmt.Errorf("destinations: queue %s job: %w", j.Kind, err)
	}
	var finished []*Job
	for _, old := range js {
		if old.Finished() {
			finished = append(finished, old)
		}
	}
	for _, old := range finished[:max(len(finished)-KeepFinishedJobs+1, 0)] {
		if err := m.o.Store.DeleteJob(ctx, old.Destination, old.ID); err != nil {
			return nil, fmt.Errorf("destinations: queue %s job: %w", j.Kind, err)
		}
	}
	j.ID, j.State, j.CreatedAt = "job_"+newID()[4:], JobQueued, m.o.Now()
	if err := m.o.Store.PutJob(ctx, j); err != nil {
		return nil, fmt.Errorf("destinations: queue %s job: %w", j.Kind, err)
	}
	m.Wake()
	return j, nil
}

// Jobs returns a destination's jobs, newest first.
func (m *Manager) Jobs(ctx context.Context, id string) ([]*Job, error) {
	if _, err := m.o.Store.Destination(ctx, id); err != nil {
		return nil, err
	}
	js, err := m.o.Store.Jobs(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("destinations: jobs: %w", err)
	}
	slices.Reverse(js)
	return js, nil
}

// jobPage is how many messages a job sends between two stored positions.
const jobPage = 100

// runJob advances the destination's oldest unfinished job by a page. ran
// is false when there is none, so the worker goes on with its records;
// a job holds them back until it finishes, which keeps a profile's
// messages in order.
func (w *worker) runJob(ctx context.Context, d *Destination) (wait time.Duration, ran bool, err error) {
	o := w.m.o
	js, err := o.Store.Jobs(ctx, d.ID)
	if err != nil {
		return o.Poll, true, err
	}
	i := slices.IndexFunc(js, func(j *Job) bool { return !j.Finished() })
	if i < 0 {
		return 0, false, nil
	}
	j := js[i]
	if due := j.NextAt.Sub(o.Now()); due > 0 {
		return due, true, nil
	}
	if j.State == JobQueued {
		if err := w.m.startJob(ctx, d, j); err != nil {
			return o.Poll, true, err
		}
		w.log.Info("destinations: job started", "job", j.ID, "kind", j.Kind, "total", j.Total)
	}
	run := w.resyncPage
	if j.Kind == JobReplay {
		run = w.replayPage
	}
	res, err := run(ctx, d, j)
	if err != nil {
		return o.Poll, true, err
	}
	if ctx.Err() != nil {
		return 0, true, nil // stopping: the job resumes from its stored position
	}
	if res != nil {
		w.m.jobFailed(j, *res)
		w.log.Warn("destinations: job message failed", "job", j.ID, "attempt", j.Attempts, "status", res.Status, "err", res.Err)
		if res.Status == http.StatusGone {
			// As for a record: the receiver is gone; the job resumes
			// when an admin enables the destination again.
			if _, err := o.Store.UpdateDestination(ctx, d.ID, func(d *Destination) error {
				d.Enabled, d.DisabledReason, d.UpdatedAt = false, "the receiver answered 410 Gone", o.Now()
				return nil
			}); err != nil {
				return o.Poll, true, err
			}
			j.NextAt = time.Time{}
		}
	}
	if j.Finished() {
		j.FinishedAt = o.Now()
		w.log.Info("destinations: job finished", "job", j.ID, "state", j.State, "done", j.Done, "total", j.Total)
	}
	if err := o.Store.PutJob(ctx, j); err != nil {
		return o.Poll, true, err
	}
	return max(j.NextAt.Sub(o.Now()), 0), true, nil
}

// startJob counts a job's work and marks it running.
func (m *Manager) startJob(ctx context.Context, d *Destination, j *Job) error {
	j.State, j.StartedAt = JobRunning, m.o.Now()
	if j.Kind == JobReplay {
		j.AfterSeq = j.FromSequence - 1
		return m.eachReplayed(ctx, d, j, func(*segments.ChangeRecord) (bool, error) { j.Total++; return true, nil })
	}
	asOf, err := m.o.Segments.LastChange(ctx)
	if err != nil {
		return fmt.Errorf("destinations: start resync: %w", err)
	}
	j.AsOf, j.Phase = asOf, segments.Entered
	for _, seg := range j.Segments {
		n, err := m.countMembers(ctx, seg)
		if err != nil {
			return err
		}
		exits := int64(0)
		for after := ""; ; {
			page, last, err := m.resyncExits(ctx, d, seg, after)
			if err != nil {
				return err
			}
			exits += int64(len(page))
			if last == "" {
				break
			}
			after = last
		}
		j.Total += n + exits
	}
	for _, trait := range j.Traits {
		n, err := m.countTrait(ctx, d, trait)
		if err != nil {
			return err
		}
		j.Total += n
	}
	return nil
}

func (m *Manager) countMembers(ctx context.Context, segment string) (int64, error) {
	var n int64
	for after := ""; ; {
		ids, err := m.o.Segments.Members(ctx, segment, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("destinations: resync: members: %w", err)
		}
		n += int64(len(ids))
		if len(ids) < 1000 {
			return n, nil
		}
		after = ids[len(ids)-1]
	}
}

// jobFailed schedules the retry of a job's failed message, or fails the
// job after the whole retry schedule.
func (m *Manager) jobFailed(j *Job, res Result) {
	j.Attempts++
	j.Error = fmt.Sprintf("attempt %d: %s", j.Attempts, cmp.Or(res.Err, fmt.Sprintf("status %d", res.Status)))
	if j.Attempts > len(m.o.Schedule) {
		j.State, j.NextAt = JobFailed, time.Time{}
		return
	}
	j.NextAt = m.o.Now().Add(m.retryAfter(j.Attempts, res))
}

// jobSent records a message a job sent (or had no need to send).
func jobSent(j *Job) {
	j.Done++
	j.Total = max(j.Total, j.Done) // members who entered during the job
	j.Attempts, j.NextAt, j.Error = 0, time.Time{}, ""
}

// resyncPage sends up to a page of a resync's messages. A non-nil result
// is the failed answer that stopped it.
func (w *worker) resyncPage(ctx context.Context, d *Destination, j *Job) (*Result, error) {
	o := w.m.o
	if j.Segment >= len(j.Segments)+len(j.Traits) {
		j.State = JobDone
		return nil, nil
	}
	if j.Segment >= len(j.Segments) {
		return w.traitPage(ctx, d, j, j.Traits[j.Segment-len(j.Segments)])
	}
	seg := j.Segments[j.Segment]
	def, err := w.resyncDefinition(ctx, j, d.Segments, segments.Ref{Kind: lang.KindSegment, Key: seg}, "segment")
	if def == nil || err != nil {
		return nil, err
	}
	var ids []string
	end := "" // the exit phase's last row looked at ("": the sent state's end)
	if j.Phase == segments.Entered {
		if ids, err = o.Segments.Members(ctx, seg, j.After, jobPage); err != nil {
			return nil, fmt.Errorf("destinations: resync: members: %w", err)
		}
		if len(ids) == jobPage {
			end = ids[len(ids)-1]
		}
	} else if ids, end, err = w.m.resyncExits(ctx, d, seg, j.After); err != nil {
		return nil, err
	}
	recs := make([]*segments.ChangeRecord, len(ids))
	for i, p := range ids {
		recs[i] = &segments.ChangeRecord{Sequence: j.AsOf, Segment: seg, Version: def.Version, Profile: p,
			Direction: j.Phase, Reason: ReasonResync, Time: o.Now()}
	}
	return w.sendResyncPage(ctx, d, j, recs, end, func(r *segments.ChangeRecord) string {
		return ResyncMessageID(d.ID, j.ID, seg, r.Profile)
	})
}

// resyncDefinition returns the definition of the segment or computed
// trait (what) a resync is at, connected to the destination in conns, or
// nil when nothing more is to be sent of it: disconnected since (the job
// goes on with the next) or deleted (the job fails).
func (w *worker) resyncDefinition(ctx context.Context, j *Job, conns map[string]time.Time, ref segments.Ref, what string) (*segments.Definition, error) {
	if _, ok := conns[ref.Key]; !ok {
		j.Segment, j.Phase, j.After = j.Segment+1, segments.Entered, ""
		return nil, nil
	}
	def, err := w.m.o.Segments.Definition(ctx, ref)
	if graph.ErrorKind(err) == graph.KindNotFound {
		j.State, j.Error = JobFailed, fmt.Sprintf("%s %q was deleted", what, ref.Key)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("destinations: resync: %w", err)
	}
	return def, nil
}

// sendResyncPage sends a page of a resync's messages under their ids, and
// moves the job's position past the page (end: the page's last profile
// looked at; "": the phase ends with it).
func (w *worker) sendResyncPage(ctx context.Context, d *Destination, j *Job, recs []*segments.ChangeRecord, end string, id func(*segments.ChangeRecord) string) (*Result, error) {
	// The page's profiles, identifiers and sent state are read once, in
	// batched reads, not per message.
	b, err := w.m.prefetch(ctx, d, recs)
	if err != nil {
		return nil, err
	}
	if d.Batches() {
		if res, err := w.sendJobBatches(ctx, d, j, recs, b, id); err != nil || res != nil || ctx.Err() != nil {
			return res, err
		}
	} else {
		for _, r := range recs {
			res, err := w.sendJobMessage(ctx, d, j, r, b, id(r))
			if err != nil || res != nil || ctx.Err() != nil {
				return res, err
			}
			j.After = r.Profile
		}
	}
	if end != "" {
		j.After = end
	} else if j.Phase == segments.Entered {
		j.Phase, j.After = segments.Exited, ""
	} else {
		j.Segment, j.Phase, j.After = j.Segment+1, segments.Entered, ""
	}
	return nil, nil
}

// replayPage sends again up to a page of a replay's records.
func (w *worker) replayPage(ctx context.Context, d *Destination, j *Job) (*Result, error) {
	var recs []*segments.ChangeRecord
	err := w.m.eachReplayed(ctx, d, j, func(r *segments.ChangeRecord) (bool, error) {
		recs = append(recs, r)
		return len(recs) < jobPage, nil
	})
	if err != nil {
		return nil, err
	}
	b, err := w.m.prefetch(ctx, d, recs)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		res, err := w.sendJobMessage(ctx, d, j, r, b, MessageID(d.ID, r.Sequence))
		if err != nil || res != nil || ctx.Err() != nil {
			return res, err
		}
		j.AfterSeq = r.Sequence
	}
	if len(recs) < jobPage {
		j.State = JobDone
	}
	return nil, nil
}

// eachReplayed calls fn with each record of the replay after its position
// that the destination wants, in order, while fn returns true.
func (m *Manager) eachReplayed(ctx context.Context, d *Destination, j *Job, fn func(*segments.ChangeRecord) (bool, error)) error {
	for after := j.AfterSeq; after < j.ToSequence; {
		rs, err := m.o.Segments.Changes(ctx, after, m.o.Batch)
		if err != nil {
			return fmt.Errorf("destinations: replay: %w", err)
		}
		for _, r := range rs {
			if r.Sequence > j.ToSequence {
				return nil
			}
			if !d.Wants(r) || r.Time.Before(j.From) || !r.Time.Before(j.To) {
				continue
			}
			if ok, err := fn(r); err != nil || !ok {
				return err
			}
		}
		if len(rs) < m.o.Batch {
			return nil
		}
		after = rs[len(rs)-1].Sequence
	}
	return nil
}

// sendJobMessage sends one message of a job under the webhook id given,
// and logs the attempt; it returns the answer when it failed. An entry
// withheld by a suppression list or for want of consent, or a profile a
// forwarder cannot address, counts as done without a message.
func (w *worker) sendJobMessage(ctx context.Context, d *Destination, j *Job, r *segments.ChangeRecord, b *batchState, id string) (*Result, error) {
	m := w.m
	if drop, err := w.jobWithheld(ctx, d, j, r); err != nil || drop {
		if drop {
			jobSent(j)
		}
		return nil, err
	}
	// A job's message carries identifiers as the worker's do (the policy's
	// for an entry, those sent before for an exit, from b, the page's
	// reads), and what it delivers is recorded in the destination's sent
	// state.
	res, ok, err := m.sendAs(ctx, d, r, b, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		jobSent(j)
		return nil, nil
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	m.logAttempt(ctx, &Delivery{Destination: d.ID, Sequence: r.Sequence, Type: MessageType(r), WebhookID: id,
		Attempt: j.Attempts + 1, Job: j.ID}, res, time.Time{})
	if !res.OK() {
		return &res, nil
	}
	if err := m.recordSent(ctx, d, r, b); err != nil {
		return nil, err
	}
	jobSent(j)
	return nil, nil
}

// jobWithheld reports a job's message withheld, as a delivery would be:
// by a suppression list, then for want of consent. Each drop is logged
// with its reason and the job, as the worker's are.
func (w *worker) jobWithheld(ctx context.Context, d *Destination, j *Job, r *segments.ChangeRecord) (bool, error) {
	if m, drop, err := w.m.suppressionOf(ctx, d, r); err != nil || drop {
		if drop {
			w.log.Info("destinations: withheld", "reason", ReasonSuppressed, "scope", m.Scope.Kind, "identifier_type", m.Type,
				"job", j.ID, "sequence", r.Sequence, "profile", r.Profile)
		}
		return drop, err
	}
	if !w.m.consentGated(d) || !carriesProfile(r) {
		return false, nil
	}
	reason, err := w.withheld(ctx, d, r)
	if err != nil || reason == "" {
		return false, err
	}
	w.log.Info("destinations: withheld", "reason", reason, "purpose", d.Purpose, "job", j.ID, "sequence", r.Sequence, "profile", r.Profile)
	return true, nil
}

// sendJobBatches sends a page of a job's messages in the destination's
// batches, in order, each batch only after the one before it succeeded
// (so a profile's messages keep their order), and moves the job past each
// batch sent; it returns the answer that failed one. A batch is
// gathered from the page's messages that are not withheld, up to
// BatchSize; a retry gathers it again from the job's position, so the
// same messages go again under the same ids.
func (w *worker) sendJobBatches(ctx context.Context, d *Destination, j *Job, recs []*segments.ChangeRecord, b *batchState, idOf func(*segments.ChangeRecord) string) (*Result, error) {
	for len(recs) > 0 {
		var batch []*segments.ChangeRecord
		n := 0 // the page's records the batch covers, withheld ones included
		for ; n < len(recs) && len(batch) < d.BatchSize; n++ {
			drop, err := w.jobWithheld(ctx, d, j, recs[n])
			if err != nil {
				return nil, err
			}
			if !drop {
				batch = append(batch, recs[n])
			}
		}
		if len(batch) > 0 {
			if res, err := w.sendJobBatch(ctx, d, j, batch, b, idOf); err != nil || res != nil || ctx.Err() != nil {
				return res, err
			}
		}
		for range n {
			jobSent(j)
		}
		j.After, recs = recs[n-1].Profile, recs[n:]
	}
	return nil, nil
}

// sendJobBatch sends records of a job in one request, as the worker's
// batches go: a webhook's batch message, signed once, under an id derived
// from its messages' ids (JobBatchID: the same messages, the same id), or
// a forwarder's Segment batch call of each record's messages under their
// own ids. It logs the attempt and records what was delivered in the sent
// state; it returns the answer when it failed.
func (w *worker) sendJobBatch(ctx context.Context, d *Destination, j *Job, recs []*segments.ChangeRecord, b *batchState, idOf func(*segments.ChangeRecord) string) (*Result, error) {
	m, now := w.m, w.m.o.Now()
	var res Result
	var err error
	sent := recs
	id := ""
	if d.Kind == KindSegment {
		if res, sent, err = m.forwardRecords(ctx, d, recs, b, now, idOf); err != nil || len(sent) == 0 {
			return nil, err
		}
		id = idOf(sent[0])
	} else {
		keys, err := m.signingKeys(d, now)
		if err != nil {
			return nil, err
		}
		body, err := batchPayload(recs, func(r *segments.ChangeRecord) []Identifier { return b.identifiers(d, r) })
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = idOf(r)
		}
		id = JobBatchID(d.ID, j.ID, ids)
		res = m.o.Client.Send(ctx, d.URL, keys, Message{ID: id, At: now, Body: body})
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	m.logAttempt(ctx, &Delivery{Destination: d.ID, Sequence: j.AsOf, Type: TypeBatch, WebhookID: id, Attempt: j.Attempts + 1, Job: j.ID}, res, time.Time{})
	if !res.OK() {
		return &res, nil
	}
	for _, r := range sent {
		if err := m.recordSent(ctx, d, r, b); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// JobBatchID is the webhook-id of a batch of a job's messages: it names
// the job and hashes the ids of the messages it carries, so a retry
// carrying the same messages has the same id, and one whose messages
// changed (a profile withheld since) has another.
func JobBatchID(destination, job string, ids []string) string {
	h := fnv.New64a()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("msg_%s_%s_batch_%016x", destination, job, h.Sum64())
}

// sendAs sends one message about a change record under the webhook id
// given (a job's or a catch-up's; "": the record's own, MessageID); ok is
// false when nothing was sent (a forwarder's profile that cannot be
// addressed).
func (m *Manager) sendAs(ctx context.Context, d *Destination, r *segments.ChangeRecord, b *batchState, id string) (res Result, ok bool, err error) {
	now := m.o.Now()
	if d.Kind == KindSegment {
		writeKey, err := m.o.Sealer.OpenText(d.ID, d.SealedSecret)
		if err != nil {
			return Result{}, false, err
		}
		body, ok, err := m.forwardBatch(d, r, b, cmp.Or(id, MessageID(d.ID, r.Sequence)), now)
		if err != nil || !ok {
			return Result{}, false, err
		}
		return m.o.Client.Forward(ctx, d.URL, writeKey, body), true, nil
	}
	keys, err := m.signingKeys(d, now)
	if err != nil {
		return Result{}, false, err
	}
	body, err := payload(r, b.identifiers(d, r))
	if err != nil {
		return Result{}, false, err
	}
	return m.o.Client.Send(ctx, d.URL, keys, Message{ID: cmp.Or(id, MessageID(d.ID, r.Sequence)), At: now, Body: body}), true, nil
}

// ResyncMessageID is the webhook id of a resync's message about a
// profile: the same when the job sends it again after a restart.
func ResyncMessageID(destination, job, segment, profile string) string {
	return fmt.Sprintf("msg_%s_%s_%s_%s", destination, job, segment, profile)
}

// resyncExits reads a page of the destination's sent state after the
// profile after and returns, sorted, the profiles it holds in the segment
// that are not members now (they are sent exits), and the page's last
// profile ("" when the sent state ends within the page). What the
// destination was told decides, so a profile it was never sent, or a
// record it dead-lettered, gets no exit, and one it was sent gets one
// however long ago.
func (m *Manager) resyncExits(ctx context.Context, d *Destination, segment, after string) (exits []string, last string, err error) {
	held, states, last, err := m.heldPage(ctx, d, after, func(s *Sent) bool { return s.Segments[segment].In })
	for i, st := range states {
		if !st.Member(segment) {
			exits = append(exits, held[i])
		}
	}
	return exits, last, err
}

// heldPage reads a page of the destination's sent state after the
// profile after and returns the profiles whose row holds, with their
// states now, and the page's last profile ("" when the sent state ends
// within the page).
func (m *Manager) heldPage(ctx context.Context, d *Destination, after string, holds func(*Sent) bool) (held []string, states []*segments.ProfileState, last string, err error) {
	if m.o.Sent == nil {
		return nil, nil, "", nil
	}
	rows, err := m.o.Sent.SentPage(ctx, d.ID, after, jobPage)
	if err != nil {
		return nil, nil, "", fmt.Errorf("destinations: resync: sent state: %w", err)
	}
	if len(rows) == jobPage {
		last = rows[len(rows)-1].Profile
	}
	for _, s := range rows {
		if holds(s) {
			held = append(held, s.Profile)
		}
	}
	if len(held) == 0 {
		return nil, nil, last, nil
	}
	if states, err = m.o.Segments.States(ctx, held); err != nil {
		return nil, nil, "", fmt.Errorf("destinations: resync: states: %w", err)
	}
	return held, states, last, nil
}
