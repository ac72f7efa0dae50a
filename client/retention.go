package client

import (
	"context"
	"fmt"
	"time"
)

// RetentionSweep is what one retention sweep did (GraphQL RetentionSweep).
type RetentionSweep struct {
	StartedAt  time.Time `json:"startedAt"`
	DurationMs float64   `json:"durationMs"`
	Events     []struct {
		EventType string `json:"eventType"`
		Count     int    `json:"count"`
	} `json:"events"`
	EventsDeleted   int     `json:"eventsDeleted"`
	ProfilesTouched int     `json:"profilesTouched"`
	ProfilesExpired int     `json:"profilesExpired"`
	Batches         int     `json:"batches"`
	Error           *string `json:"error"`
}

// Retention is the server's retention policy and its last sweep (GraphQL
// Retention); nil durations keep forever.
type Retention struct {
	DefaultTTLSeconds *int `json:"defaultTtlSeconds"`
	Rules             []struct {
		EventType  string `json:"eventType"`
		TTLSeconds int    `json:"ttlSeconds"`
	} `json:"rules"`
	InactiveProfilesSeconds *int            `json:"inactiveProfilesSeconds"`
	SweepEverySeconds       *int            `json:"sweepEverySeconds"`
	LastSweep               *RetentionSweep `json:"lastSweep"`
}

const sweepFields = `startedAt durationMs events { eventType count } eventsDeleted profilesTouched profilesExpired batches error`

// Retention reads the retention policy and the last sweep (admin key);
// nil when the server runs no retention.
func (c *Client) Retention(ctx context.Context) (*Retention, error) {
	var out struct {
		Retention *Retention `json:"retention"`
	}
	if err := c.GraphQL(ctx, `{ retention { defaultTtlSeconds rules { eventType ttlSeconds } inactiveProfilesSeconds
		sweepEverySeconds lastSweep { `+sweepFields+` } } }`, nil, &out); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	return out.Retention, nil
}

// SweepRetention runs a retention sweep now (admin key) and returns what
// it did; a sweep that stopped at an error has Error set.
func (c *Client) SweepRetention(ctx context.Context) (*RetentionSweep, error) {
	var out struct {
		Sweep *RetentionSweep `json:"sweepRetention"`
	}
	if err := c.GraphQL(ctx, `mutation { sweepRetention { `+sweepFields+` } }`, nil, &out); err != nil {
		return nil, fmt.Errorf("retention sweep: %w", err)
	}
	return out.Sweep, nil
}
