package client

import (
	"context"
	"fmt"
	"time"
)

// Destination is a destination as the server lists it (admin key), with
// its delivery health.
type Destination struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	Kind           string   `json:"kind"`
	Segments       []string `json:"segments"`
	Enabled        bool     `json:"enabled"`
	DisabledReason string   `json:"disabledReason"`
	Health         struct {
		Pending          int        `json:"pending"`
		PendingCapped    bool       `json:"pendingCapped"`
		OldestPendingAge *float64   `json:"oldestPendingAge"`
		Delivered        int        `json:"delivered"`
		FailedAttempts   int        `json:"failedAttempts"`
		DeadLetters      int        `json:"deadLetters"`
		SuccessRate      *float64   `json:"successRate"`
		LastError        string     `json:"lastError"`
		LastErrorAt      *time.Time `json:"lastErrorAt"`
		LastSuccessAt    *time.Time `json:"lastSuccessAt"`
		RetryingSequence string     `json:"retryingSequence"`
		RetryAttempts    int        `json:"retryAttempts"`
		NextRetryAt      *time.Time `json:"nextRetryAt"`
	} `json:"health"`
}

// DeliveryJob is a resync or replay job with its progress.
type DeliveryJob struct {
	ID            string     `json:"id"`
	Destination   string     `json:"destination"`
	Kind          string     `json:"kind"`
	Segments      []string   `json:"segments"`
	Traits        []string   `json:"traits"`
	State         string     `json:"state"`
	Error         string     `json:"error"`
	Done          int        `json:"done"`
	Total         int        `json:"total"`
	FromSequence  string     `json:"fromSequence"`
	ToSequence    string     `json:"toSequence"`
	NextAttemptAt *time.Time `json:"nextAttemptAt"`
	CreatedAt     time.Time  `json:"createdAt"`
	FinishedAt    *time.Time `json:"finishedAt"`
}

// Finished reports a job done or failed.
func (j *DeliveryJob) Finished() bool { return j.State == "DONE" || j.State == "FAILED" }

// DeliveryAttempt is a receiver's answer to one message.
type DeliveryAttempt struct {
	OK         bool    `json:"ok"`
	Status     *int    `json:"status"`
	Error      string  `json:"error"`
	DurationMs float64 `json:"durationMs"`
}

const (
	destinationFields = `id name url kind segments enabled disabledReason health { pending pendingCapped oldestPendingAge
		delivered failedAttempts deadLetters successRate lastError lastErrorAt lastSuccessAt retryingSequence retryAttempts nextRetryAt }`
	jobFields = "id destination kind segments traits state error done total fromSequence toSequence nextAttemptAt createdAt finishedAt"
)

// Destinations lists the destinations with their health (admin key).
func (c *Client) Destinations(ctx context.Context) ([]Destination, error) {
	var out struct {
		Destinations []Destination `json:"destinations"`
	}
	if err := c.GraphQL(ctx, "{ destinations { "+destinationFields+" } }", nil, &out); err != nil {
		return nil, fmt.Errorf("destinations: %w", err)
	}
	return out.Destinations, nil
}

// Redeliver sends a dead letter again now (admin key).
func (c *Client) Redeliver(ctx context.Context, id, sequence string) (*DeliveryAttempt, error) {
	var out struct {
		R DeliveryAttempt `json:"r"`
	}
	if err := c.GraphQL(ctx, `mutation($id: ID!, $seq: String!) { r: redeliver(destination: $id, sequence: $seq) { ok status error durationMs } }`,
		map[string]any{"id": id, "seq": sequence}, &out); err != nil {
		return nil, fmt.Errorf("redeliver: %w", err)
	}
	return &out.R, nil
}

// ReplayDeliveries asks for a replay (admin key): from a sequence when
// fromSequence is set, else of the records in [from, to), as a job.
func (c *Client) ReplayDeliveries(ctx context.Context, id, fromSequence string, from, to *time.Time) error {
	vars := map[string]any{"id": id}
	if fromSequence != "" {
		vars["seq"] = fromSequence
	}
	if from != nil {
		vars["from"] = from.UTC().Format(time.RFC3339Nano)
	}
	if to != nil {
		vars["to"] = to.UTC().Format(time.RFC3339Nano)
	}
	if err := c.GraphQL(ctx, `mutation($id: ID!, $seq: String, $from: Time, $to: Time) {
		replayDeliveries(destination: $id, fromSequence: $seq, from: $from, to: $to) { id } }`, vars, nil); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// Resync queues a resync job (admin key) of the segment and the computed
// trait given; both "": every connected one.
func (c *Client) Resync(ctx context.Context, id, segment, trait string) (*DeliveryJob, error) {
	vars := map[string]any{"id": id}
	if segment != "" {
		vars["seg"] = segment
	}
	if trait != "" {
		vars["trait"] = trait
	}
	var out struct {
		J DeliveryJob `json:"j"`
	}
	if err := c.GraphQL(ctx, `mutation($id: ID!, $seg: String, $trait: String) { j: resync(destination: $id, segment: $seg, trait: $trait) { `+jobFields+` } }`, vars, &out); err != nil {
		return nil, fmt.Errorf("resync: %w", err)
	}
	return &out.J, nil
}

// DeliveryJobs lists a destination's jobs, newest first (admin key).
func (c *Client) DeliveryJobs(ctx context.Context, id string) ([]DeliveryJob, error) {
	var out struct {
		Jobs []DeliveryJob `json:"deliveryJobs"`
	}
	if err := c.GraphQL(ctx, `query($id: ID!) { deliveryJobs(destination: $id) { `+jobFields+` } }`, map[string]any{"id": id}, &out); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return out.Jobs, nil
}
