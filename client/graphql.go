package client

import (
	"context"
	"fmt"
	"strings"

	json "github.com/segmentio/encoding/json"
)

// GraphQLError is an error in a GraphQL answer, with its stable code
// (extensions.code: BAD_USER_INPUT, CONFLICT, NOT_FOUND, FORBIDDEN, …).
type GraphQLError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func (e *GraphQLError) Error() string {
	if c := e.Code(); c != "" {
		return e.Message + " (" + c + ")"
	}
	return e.Message
}

// Code is the error's extensions.code.
func (e *GraphQLError) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// DefinitionPos is where a definition's error is (extensions
// definitionError of a segments mutation), if the error says.
func (e *GraphQLError) DefinitionPos() (code string, line, column int, ok bool) {
	de, _ := e.Extensions["definitionError"].(map[string]any)
	if de == nil {
		return "", 0, 0, false
	}
	l, _ := de["line"].(float64)
	c, _ := de["column"].(float64)
	code, _ = de["code"].(string)
	return code, int(l), int(c), true
}

// GraphQL runs a query or mutation with the client's key as a bearer
// token (a read key for queries, the steward key for mutations) and
// decodes its data into out. The first GraphQL error is returned as a
// *GraphQLError. Refusals before execution (no key, a wrong key) come
// back as *StatusError.
func (c *Client) GraphQL(ctx context.Context, query string, vars map[string]any, out any) error {
	var resp struct {
		Data   json.RawMessage `json:"data"`
		Errors []*GraphQLError `json:"errors"`
	}
	data, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	// Sent once: a mutation whose answer was lost may have run (a key
	// created), so it is not retried.
	if err := c.postOnce(ctx, "/graphql", data, &resp, true); err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	if len(resp.Errors) > 0 {
		return resp.Errors[0]
	}
	if out == nil || len(resp.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(resp.Data, out); err != nil {
		return fmt.Errorf("graphql: decoding the answer: %w", err)
	}
	return nil
}

// firstErrorMessage reads the message of a GraphQL error body (refusals
// before execution answer with one and a 4xx status).
func firstErrorMessage(data []byte) string {
	var body struct {
		Errors []*GraphQLError `json:"errors"`
	}
	if json.Unmarshal(data, &body) != nil || len(body.Errors) == 0 {
		return ""
	}
	return strings.TrimSpace(body.Errors[0].Error())
}
