package graph

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Config holds the stitching rules.
type Config struct {
	// Limits caps how many values of a type one profile may hold.
	Limits map[string]int
	// Priority orders types from the most to the least trusted; when a merge
	// would break a limit, the lowest-priority identifiers are left out.
	Priority []string
	// HubLimit is how many distinct strong identifiers a value may be seen
	// with before it is marked as a hub and stops joining profiles.
	HubLimit int
	// SharedLimits: an identifier of a type named here seen with more
	// distinct user IDs than its limit is shared (a family tablet, a
	// library computer): it is marked like a hub, and the profile it joined
	// while it looked personal is repaired (see Stitcher.RepairShared).
	SharedLimits map[string]int
	// RecordIDLimit caps the values of an imported record-ID type (the
	// identifier column of `idgraph import`, Stitcher.AddRecordIDTypes)
	// unless --limits names the type.
	RecordIDLimit int
	// explicit lists the types --limits named.
	explicit map[string]bool
	// NameGuard: an identify whose first name clearly disagrees with the
	// name of the profile it would join (Jaro-Winkler similarity below
	// NameGuard, and neither a nickname, prefix nor initial of the other)
	// does not join its new emails and phones to that profile: they wait
	// for review with reason name_conflict (a household member's form on
	// the signed-in tablet). 0 turns the guard off.
	NameGuard float64
}

// DefaultNameGuard is the similarity below which two first names are two
// people's: typos (Jon, John; Micheal, Michael) score above it.
const DefaultNameGuard = 0.85

// DefaultCustomLimit applies to types that Config.Limits does not name.
const DefaultCustomLimit = 5

// DefaultRecordIDLimit is how many records of one system a person may
// have before a further record waits for review. A CRM export holds a
// person two or three times as a rule, rarely more than ten (FEBRL's
// generator: up to 9 duplicates); past 20, the records more likely share
// a placeholder (a reception desk's email, a test customer) than a person,
// and 20 is also where the chaining guard stops joining large profiles.
const DefaultRecordIDLimit = 20

// nativeTypes are Segment's own identifier types: their limits stand
// even when an import uses one as its identifier column.
var nativeTypes = []string{TypeUserID, TypeAnonymousID, TypeEmail, TypePhone, TypeDeviceID, TypeAdvertisingID}

// withRecordTypes returns the config with RecordIDLimit applied to the
// record-ID types that neither --limits nor Segment fixes.
func (c Config) withRecordTypes(types map[string]bool) Config {
	if len(types) == 0 || c.RecordIDLimit <= 0 {
		return c
	}
	limits := maps.Clone(c.Limits)
	for typ := range types {
		if !c.explicit[typ] && !slices.Contains(nativeTypes, typ) {
			limits[typ] = c.RecordIDLimit
		}
	}
	c.Limits = limits
	return c
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Limits: map[string]int{
			TypeUserID: 1, TypeEmail: 5, TypePhone: 5, TypeCRMID: 5,
			TypeDeviceID: 10, TypeAdvertisingID: 10, TypeAnonymousID: 1000,
		},
		RecordIDLimit: DefaultRecordIDLimit,
		Priority:      []string{TypeUserID, TypeCRMID, TypeEmail, TypePhone, TypeDeviceID, TypeAdvertisingID, TypeAnonymousID},
		HubLimit:      10,
		// A browser, an app install or a device signed into by two people
		// is shared already: Segment's SDKs keep one anonymous ID per
		// install whoever holds it.
		SharedLimits: map[string]int{TypeAnonymousID: 1, TypeDeviceID: 1, TypeAdvertisingID: 1},
		NameGuard:    DefaultNameGuard,
	}
}

// ParseSharedLimits parses "type=N,…" into c.SharedLimits (the
// --shared-limits flag); "off" clears them.
func (c *Config) ParseSharedLimits(s string) error {
	c.SharedLimits = map[string]int{}
	if strings.TrimSpace(s) == "off" {
		return nil
	}
	return parseTypeCounts("shared limits", s, c.SharedLimits)
}

// ParseNameGuard parses the --name-guard flag: a Jaro-Winkler threshold
// in (0, 1], or "off".
func (c *Config) ParseNameGuard(s string) error {
	s = strings.TrimSpace(s)
	if s == "off" {
		c.NameGuard = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0 && v <= 1) {
		return fmt.Errorf("name guard: %q is not a similarity in (0, 1] or off", s)
	}
	c.NameGuard = v
	return nil
}

func (c Config) limit(typ string) int {
	if n, ok := c.Limits[typ]; ok {
		return n
	}
	return DefaultCustomLimit
}

// rank orders types by priority; types not in Priority come after them.
func (c Config) rank(typ string) int {
	if i := slices.Index(c.Priority, typ); i >= 0 {
		return i
	}
	return len(c.Priority)
}

// ParseLimits parses "type=N,type=N" into c.Limits (the --limits flag).
func (c *Config) ParseLimits(s string) error {
	named := map[string]int{}
	if err := parseTypeCounts("limits", s, named); err != nil {
		return err
	}
	if c.explicit == nil {
		c.explicit = map[string]bool{}
	}
	for typ, n := range named {
		c.Limits[typ], c.explicit[typ] = n, true
	}
	return nil
}

// parseTypeCounts parses "type=N,type=N" (N ≥ 1) into into.
func parseTypeCounts(what, s string, into map[string]int) error {
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		typ, n, ok := strings.Cut(item, "=")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v < 1 {
			return fmt.Errorf("%s: %q is not type=N with N ≥ 1", what, item)
		}
		if err := ValidateType(typ); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		into[typ] = v
	}
	return nil
}

// ParsePriority parses "type,type,…" (most trusted first) into c.Priority
// (the --priority flag). Types it leaves out rank after those it names.
func (c *Config) ParsePriority(s string) error {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var order []string
	for typ := range strings.SplitSeq(s, ",") {
		typ = strings.TrimSpace(typ)
		if err := ValidateType(typ); err != nil {
			return fmt.Errorf("priority: %w", err)
		}
		if slices.Contains(order, typ) {
			return fmt.Errorf("priority: %s is named twice", typ)
		}
		order = append(order, typ)
	}
	c.Priority = order
	return nil
}
