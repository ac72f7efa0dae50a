package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/idgraph/idgraph/auth"
)

// parseRoleList reads "role=value,role=value" (serve's per-role flags).
func parseRoleList[T any](s string, parse func(string) (T, error)) (map[auth.Role]T, error) {
	out := map[auth.Role]T{}
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want role=value", item)
		}
		role, err := auth.ParseRole(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		v, err := parse(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out[role] = v
	}
	return out, nil
}

// ParseRoleComplexity reads --role-complexity ("support=3000,read=5000"):
// the roles it names replace DefaultRoleComplexity's.
func ParseRoleComplexity(s string) (map[auth.Role]int, error) {
	m, err := parseRoleList(s, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err == nil && n < 1 {
			err = fmt.Errorf("must be positive")
		}
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("role complexity: %w", err)
	}
	out := map[auth.Role]int{}
	for r, n := range DefaultRoleComplexity {
		out[r] = n
	}
	for r, n := range m {
		out[r] = n
	}
	return out, nil
}
