package client

import (
	"context"
	"fmt"
	"time"
)

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
