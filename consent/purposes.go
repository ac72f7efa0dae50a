package consent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/idgraph/idgraph/graph"
)

// DefaultPurposes are the purposes configured when none are given.
var DefaultPurposes = []string{"advertising", "analytics", "marketing", "personalisation"}

// Purposes are the configured purposes and how the consent ids of a
// consent manager map onto them.
type Purposes struct {
	names []string
	// ids maps a lower-cased Segment category or RudderStack consent id
	// to a purpose.
	ids map[string]string
}

// NewPurposes configures the purposes (nil or empty: DefaultPurposes) and
// the mapping of consent ids or categories to purposes ("C0004" →
// "advertising"). A purpose name is lower case, 1 to 64 characters of
// [a-z0-9_-].
func NewPurposes(names []string, ids map[string]string) (*Purposes, error) {
	if len(names) == 0 {
		names = DefaultPurposes
	}
	p := &Purposes{ids: map[string]string{}}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if !validName(n) {
			return nil, graph.FieldErrorf("purposes", "purpose %q must be 1 to 64 characters of a-z, 0-9, _ and -", n)
		}
		if !slices.Contains(p.names, n) {
			p.names = append(p.names, n)
		}
	}
	slices.Sort(p.names)
	for id, purpose := range ids {
		purpose = strings.ToLower(strings.TrimSpace(purpose))
		if !slices.Contains(p.names, purpose) {
			return nil, graph.FieldErrorf("consentIds", "consent id %q maps to %q, which is not a configured purpose", id, purpose)
		}
		p.ids[strings.ToLower(strings.TrimSpace(id))] = purpose
	}
	return p, nil
}

// ParseMapping reads "id=purpose,id=purpose" (serve --consent-ids).
func ParseMapping(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		id, purpose, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(id) == "" {
			return nil, graph.FieldErrorf("consentIds", "%q is not id=purpose", part)
		}
		out[strings.TrimSpace(id)] = strings.TrimSpace(purpose)
	}
	return out, nil
}

func validName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Names returns the configured purposes, sorted.
func (p *Purposes) Names() []string { return slices.Clone(p.names) }

// Configured reports whether purpose is configured.
func (p *Purposes) Configured(purpose string) bool { return slices.Contains(p.names, purpose) }

// Require returns an invalid-input error naming "purpose" unless purpose is
// configured.
func (p *Purposes) Require(purpose string) error {
	if !p.Configured(purpose) {
		return graph.FieldErrorf("purpose", "%q is not a configured purpose (%s)", purpose, strings.Join(p.names, ", "))
	}
	return nil
}

// purposeOf maps a category or consent id to a purpose: the configured
// mapping, else the id itself, lower-cased (kept, though unchecked, when
// it is not a configured purpose). "" when the id is unusable.
func (p *Purposes) purposeOf(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	if m, ok := p.ids[id]; ok {
		return m
	}
	if len(id) > 64 {
		return ""
	}
	return id
}

// Choice is one purpose's status read from a message.
type Choice struct {
	Purpose, Status, Source string
}

// wireContext is the part of a message's context that carries consent.
type wireContext struct {
	Consent *struct {
		CategoryPreferences map[string]json.RawMessage `json:"categoryPreferences"`
	} `json:"consent"`
	ConsentManagement *struct {
		AllowedConsentIDs []json.RawMessage `json:"allowedConsentIds"`
		DeniedConsentIDs  []json.RawMessage `json:"deniedConsentIds"`
	} `json:"consentManagement"`
}

// MaxChoices bounds the choices one message may carry.
const MaxChoices = 64

// FromContext reads the consent choices of a message's context: Segment's
// context.consent.categoryPreferences (category → true/false) and
// RudderStack's context.consentManagement (allowedConsentIds,
// deniedConsentIds: strings, or objects with consentId as the v1.1 SDKs
// send them). A denial wins over a grant of the same purpose in one
// message. Values of the wrong type are skipped, not fatal: consent is an
// addition to a message that is otherwise valid.
func (p *Purposes) FromContext(raw json.RawMessage) []Choice {
	if len(raw) == 0 {
		return nil
	}
	var c wireContext
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	got := map[string]Choice{}
	set := func(id, status, source string) {
		purpose := p.purposeOf(id)
		if purpose == "" || len(got) >= MaxChoices {
			return
		}
		if old, ok := got[purpose]; ok && old.Status == Denied {
			return
		}
		got[purpose] = Choice{Purpose: purpose, Status: status, Source: source}
	}
	if c.Consent != nil {
		for cat, v := range c.Consent.CategoryPreferences {
			var b bool
			if json.Unmarshal(v, &b) != nil {
				continue
			}
			set(cat, map[bool]string{true: Granted, false: Denied}[b], SourceSegment)
		}
	}
	if m := c.ConsentManagement; m != nil {
		for _, v := range m.AllowedConsentIDs {
			set(consentID(v), Granted, SourceRudderStack)
		}
		for _, v := range m.DeniedConsentIDs {
			set(consentID(v), Denied, SourceRudderStack)
		}
	}
	out := make([]Choice, 0, len(got))
	for _, ch := range got {
		out = append(out, ch)
	}
	slices.SortFunc(out, func(a, b Choice) int { return strings.Compare(a.Purpose, b.Purpose) })
	return out
}

// consentID reads a consent id given as a string or as {"consentId": …}.
func consentID(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var o struct {
		ConsentID json.RawMessage `json:"consentId"`
	}
	if json.Unmarshal(v, &o) == nil && len(o.ConsentID) > 0 {
		if json.Unmarshal(o.ConsentID, &s) == nil {
			return s
		}
		return strings.Trim(string(o.ConsentID), `"`)
	}
	return ""
}

// FromObservation makes the records of an observation's consent choices:
// one per choice and identifier, identified by the message ID and purpose,
// at the message's time.
func (p *Purposes) FromObservation(o *graph.Observation) []Record {
	choices := p.FromContext(o.Event.Context)
	var out []Record
	for _, ch := range choices {
		src := ch.Source
		if o.Source != "" {
			src += ":" + o.Source
		}
		for _, k := range o.Identifiers {
			out = append(out, Record{ID: fmt.Sprintf("%s/%s", o.MessageID, ch.Purpose), Key: k, Purpose: ch.Purpose,
				Status: ch.Status, Time: o.Time, Source: src})
		}
	}
	return out
}
