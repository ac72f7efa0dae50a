// Package schema holds idgraph's GraphQL schema: the SDL in *.graphqls, the
// executable schema gqlgen generates from it, and the few hand-written
// model types it binds to.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/idgraph/idgraph/graph"
)

//go:generate sh -c "cd .. && go tool gqlgen generate --config gqlgen.yml"

// Profile is a graph profile as served: the live profile, and the ID it was
// asked for by when that ID had been absorbed into it.
type Profile struct {
	*graph.Profile
	RedirectedFrom *string
}

// JSON is the JSON scalar: any JSON value, passed through as is.
type JSON json.RawMessage

// MarshalGQL writes the value (null when empty).
func (j JSON) MarshalGQL(w io.Writer) {
	if len(j) == 0 {
		io.WriteString(w, "null")
		return
	}
	w.Write(bytes.TrimSpace(j))
}

// UnmarshalGQL accepts any input value.
func (j *JSON) UnmarshalGQL(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	*j = data
	return nil
}

// ReviewItem is one pending edge of the review queue.
type ReviewItem struct {
	ID     string
	Edge   *graph.Edge
	Reason string
	Score  float64
	Impact int
}

// ProfileRead is an answer that names the profile it is about; the audit
// log records reads of personal data by that profile. A nil answer names
// none.
type ProfileRead interface {
	ReadProfileID() string
}

func (x *ProfileConsent) ReadProfileID() string {
	if x == nil {
		return ""
	}
	return x.ProfileID
}

func (x *MembershipExplanation) ReadProfileID() string {
	if x == nil {
		return ""
	}
	return x.ProfileID
}

func (x *ComputedTraitExplanation) ReadProfileID() string {
	if x == nil {
		return ""
	}
	return x.ProfileID
}
