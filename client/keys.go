package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	json "github.com/segmentio/encoding/json"
)

// GraphQLError is an error the GraphQL API answered, with its code
// (FORBIDDEN, UNAUTHENTICATED, NOT_FOUND…).
type GraphQLError struct {
	Status  int
	Code    string
	Message string
}

func (e *GraphQLError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// GraphQL runs one operation with the key as a bearer token and decodes
// its data into out. It is sent once: a mutation is not retried.
func (c *Client) GraphQL(ctx context.Context, query string, vars map[string]any, out any) error {
	data, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/graphql", bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	var res struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return &StatusError{Code: resp.StatusCode, Message: string(bytes.TrimSpace(body))}
	}
	if len(res.Errors) > 0 {
		code, _ := res.Errors[0].Extensions["code"].(string)
		return &GraphQLError{Status: resp.StatusCode, Code: code, Message: res.Errors[0].Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(res.Data, out); err != nil {
		return fmt.Errorf("graphql: decoding the answer: %w", err)
	}
	return nil
}

// APIKey is a key as the server lists it: never its secret.
type APIKey struct {
	ID         string     `json:"id"`
	Role       string     `json:"role"`
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Created    time.Time  `json:"created"`
	Expires    *time.Time `json:"expires"`
	Revoked    *time.Time `json:"revoked"`
	ReplacedBy string     `json:"replacedBy"`
}

const apiKeyFields = "id role name state created expires revoked replacedBy"

// ListKeys lists the server's keys (admin key).
func (c *Client) ListKeys(ctx context.Context) ([]APIKey, error) {
	var out struct {
		APIKeys []APIKey `json:"apiKeys"`
	}
	if err := c.GraphQL(ctx, "{ apiKeys { "+apiKeyFields+" } }", nil, &out); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out.APIKeys, nil
}

// CreateKey creates a key (admin key) and returns it, secret included,
// with its record. expires zero means it does not expire.
func (c *Client) CreateKey(ctx context.Context, role, name string, expires time.Duration) (string, *APIKey, error) {
	vars := map[string]any{"role": role, "name": name}
	if expires > 0 {
		vars["expiresIn"] = int(expires / time.Second)
	}
	return c.newKey(ctx, "create key", `mutation($role: String!, $name: String, $expiresIn: Int) {
		k: createApiKey(role: $role, name: $name, expiresIn: $expiresIn) { key apiKey { `+apiKeyFields+` } } }`, vars)
}

// RotateKey replaces the key id (admin key); the old one keeps working
// for grace.
func (c *Client) RotateKey(ctx context.Context, id string, grace time.Duration) (string, *APIKey, error) {
	return c.newKey(ctx, "rotate key", `mutation($id: ID!, $grace: Int) {
		k: rotateApiKey(id: $id, graceSeconds: $grace) { key apiKey { `+apiKeyFields+` } } }`,
		map[string]any{"id": id, "grace": int(grace / time.Second)})
}

func (c *Client) newKey(ctx context.Context, op, query string, vars map[string]any) (string, *APIKey, error) {
	var out struct {
		K struct {
			Key    string `json:"key"`
			APIKey APIKey `json:"apiKey"`
		} `json:"k"`
	}
	if err := c.GraphQL(ctx, query, vars, &out); err != nil {
		return "", nil, fmt.Errorf("%s: %w", op, err)
	}
	return out.K.Key, &out.K.APIKey, nil
}

// RevokeKey ends the key id at once (admin key).
func (c *Client) RevokeKey(ctx context.Context, id string) (*APIKey, error) {
	var out struct {
		K APIKey `json:"k"`
	}
	if err := c.GraphQL(ctx, "mutation($id: ID!) { k: revokeApiKey(id: $id) { "+apiKeyFields+" } }",
		map[string]any{"id": id}, &out); err != nil {
		return nil, fmt.Errorf("revoke key: %w", err)
	}
	return &out.K, nil
}
