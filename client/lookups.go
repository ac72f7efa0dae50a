package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	json "github.com/segmentio/encoding/json"
)

// LookupOptions configure a GraphQL lookup load run.
type LookupOptions struct {
	Profiles int // profiles seeded (each with 10 identifiers) and looked up
	Requests int
	Clients  int
	WriteKey string // when set, the profiles are seeded first
	Seed     uint64
	// Search sends SearchQuery for prefixes of the load generator's
	// anonymous IDs ("anon-1234…") instead of lookups.
	Search bool
}

// LookupQuery is the benchmark's query: a profile by email with its ID,
// traits and identifiers.
const LookupQuery = `query($v: String!) { lookup(type: "email", value: $v) { id traits identifiers { type value } } }`

// SearchQuery is the search benchmark's query.
const SearchQuery = `query($v: String!) { search(query: $v, first: 10) { field value profile { id } } }`

// SeedLookupProfiles sends, for each of n profiles, the messages that give
// it 10 identifiers and a few traits.
func (c *Client) SeedLookupProfiles(ctx context.Context, n int) error {
	var batch []map[string]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.PostWrite(ctx, "/v1/batch", map[string]any{"batch": batch}, nil)
		batch = batch[:0]
		return err
	}
	for i := range n {
		for j := range 4 {
			m := map[string]any{"type": "identify", "messageId": fmt.Sprintf("lookup-seed-%d-%d", i, j),
				"userId": fmt.Sprintf("lk-user-%d", i), "anonymousId": fmt.Sprintf("lk-anon-%d-%d", i, j)}
			if j == 0 {
				m["traits"] = map[string]any{"email": fmt.Sprintf("lk%d@bench.io", i), "phone": fmt.Sprintf("+1415%07d", 1000000+i),
					"name": fmt.Sprintf("Bench Person %d", i), "plan": "pro"}
				m["context"] = map[string]any{"device": map[string]any{"id": fmt.Sprintf("lk-dev-%d", i), "advertisingId": fmt.Sprintf("lk-ad-%d", i)},
					"externalIds": []map[string]any{{"id": fmt.Sprintf("C-%d", i), "type": "crm_id"}}}
			}
			batch = append(batch, m)
		}
		if len(batch) >= 400 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// LoadLookups runs opts.Requests lookups from opts.Clients goroutines,
// each request for a random seeded profile, and reports requests/s and
// latency percentiles. The read key is c.Key.
func (c *Client) LoadLookups(ctx context.Context, opts LookupOptions) (LoadResult, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: max(opts.Clients, 1)}, Timeout: 10 * time.Second}
	return drive(ctx, opts.Clients, opts.Requests, opts.Seed, func(ctx context.Context, rng *rand.Rand, _ int) error {
		query, v := LookupQuery, fmt.Sprintf("lk%d@bench.io", rng.IntN(opts.Profiles))
		if opts.Search {
			id := fmt.Sprintf("anon-%d", rng.IntN(opts.Profiles))
			query, v = SearchQuery, id[:min(len(id), 6+rng.IntN(4))]
		}
		body, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"v": v}})
		return c.postGraphQL(ctx, hc, body)
	})
}

func (c *Client) postGraphQL(ctx context.Context, hc *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Key)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || bytes.Contains(data, []byte(`"errors"`)) {
		return fmt.Errorf("lookup: %d %s", resp.StatusCode, data)
	}
	return nil
}
