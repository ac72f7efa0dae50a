package resolver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"regexp"

	"github.com/99designs/gqlgen/graphql"

	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/mask"
	"github.com/idgraph/idgraph/schema"
)

// Masking for support agents (docs/security.md, "Masking"). One field
// middleware masks every field's result by the field's class in
// FieldMasks, so no resolver masks anything itself, and a new field is
// masked wholesale for support until it is classified
// (TestEveryPersonalFieldIsClassified fails meanwhile).

// errNoSuchCustomer is a support key's answer to a lookup that finds
// nothing.
var errNoSuchCustomer = graph.Errorf(graph.KindNotFound, "no customer has that identifier")

// MaskedRole reports whether a role sees personal data masked.
func MaskedRole(r auth.Role) bool { return r == auth.RoleSupport }

// Masked reports whether the request's caller sees personal data masked.
func Masked(ctx context.Context) bool { return MaskedRole(CallerOf(ctx).Role) }

// FieldMask masks one field's result, for a support caller.
type FieldMask struct {
	// Class names what the field holds, for docs and tests.
	Class string
	apply func(r *mask.Rules, fc *graphql.FieldContext, v any) any
}

var (
	// notPersonal fields hold IDs, names of things, times and counts.
	notPersonal = FieldMask{Class: "not personal"}
	// identifierValue is masked by its identifier's type (user IDs are
	// kept: agents find customers by them).
	identifierValue = FieldMask{Class: "identifier value", apply: func(r *mask.Rules, fc *graphql.FieldContext, v any) any {
		typ := identifierTypeOf(parentResult(fc))
		return mapStrings(v, func(s string) string {
			if typ == "" {
				return mask.Value(mask.Other, s) // no type to go by: hide it
			}
			return r.Identifier(typ, s)
		})
	}}
	// document is JSON whose personal keys are masked (traits, properties,
	// context, audit snapshots, explanations).
	document = FieldMask{Class: "document", apply: func(r *mask.Rules, _ *graphql.FieldContext, v any) any {
		return maskJSON(r, v, "")
	}}
	// traitValue is a trait's value: masked as its path says.
	traitValue = FieldMask{Class: "trait value", apply: func(r *mask.Rules, fc *graphql.FieldContext, v any) any {
		path := ""
		if ts, ok := parentResult(fc).(*schema.TraitSource); ok {
			path = ts.Path
		}
		return maskJSON(r, v, path)
	}}
	// computedValue is a computed trait's value: masked as its key says.
	computedValue = FieldMask{Class: "computed trait value", apply: func(r *mask.Rules, fc *graphql.FieldContext, v any) any {
		key := ""
		switch c := parentResult(fc).(type) {
		case *schema.ComputedTraitValue:
			key = c.Key
		case *schema.ComputedTraitExplanation:
			key = c.ComputedTrait.Key
		case *schema.ComputedTraitChange:
			key = c.Trait
		}
		return maskJSON(r, v, key)
	}}
	// anyValue is a value whose meaning the field does not say (a segment
	// explanation's node may be any trait): strings and long numbers are
	// masked whatever their keys; booleans and small numbers stay.
	anyValue = FieldMask{Class: "any value", apply: func(r *mask.Rules, _ *graphql.FieldContext, v any) any {
		j, ok := v.(schema.JSON)
		if !ok {
			return mapStrings(v, func(s string) string { return mask.Value(mask.Other, s) })
		}
		out, err := r.JSONAs(j, mask.Other)
		if err != nil {
			out = []byte(`"***"`)
		}
		return schema.JSON(out)
	}}
	// freeText may quote anything a person wrote: what looks like an
	// email, phone or IP address is masked.
	freeText = FieldMask{Class: "free text", apply: func(_ *mask.Rules, _ *graphql.FieldContext, v any) any {
		return mapStrings(v, scrub)
	}}
	// opaque IDs encode identifier values (an edge's ID is its two keys in
	// base64): support gets a token that names the same thing within this
	// process and tells nothing.
	opaque = FieldMask{Class: "opaque", apply: func(_ *mask.Rules, _ *graphql.FieldContext, v any) any {
		return mapStrings(v, opaqueToken)
	}}
	// unclassified is what a field missing from FieldMasks gets: hidden.
	unclassified = FieldMask{Class: "unclassified", apply: func(r *mask.Rules, _ *graphql.FieldContext, v any) any {
		if j, ok := v.(schema.JSON); ok {
			return maskJSON(r, j, "unclassified")
		}
		return mapStrings(v, func(s string) string { return mask.Value(mask.Other, s) })
	}}
)

func personal(k mask.Kind) FieldMask {
	return FieldMask{Class: "personal: " + string(k), apply: func(_ *mask.Rules, _ *graphql.FieldContext, v any) any {
		return mapStrings(v, func(s string) string { return mask.Value(k, s) })
	}}
}

// FieldMasks classifies every String, ID and JSON field of every type a
// root field reaches.
var FieldMasks = map[string]FieldMask{
	"Profile.id": notPersonal, "Profile.redirectedFrom": notPersonal, "Profile.mergedIds": notPersonal,
	"Profile.name": personal(mask.Name), "Profile.email": personal(mask.Email), "Profile.phone": personal(mask.Phone),
	"Profile.traits": document, "Profile.segments": notPersonal, "Me.segments": notPersonal, "Me.traits": document,
	"TraitSource.path": notPersonal, "TraitSource.source": notPersonal, "TraitSource.value": traitValue,
	"Identifier.type": notPersonal, "Identifier.value": identifierValue, "Identifier.sources": notPersonal,
	"IdentifierRef.type": notPersonal, "IdentifierRef.value": identifierValue,
	"Edge.id": opaque, "Edge.reason": notPersonal, "Edge.model": notPersonal, "Edge.explanation": document,
	"EdgeDecision.actor": notPersonal, "EdgeDecision.action": notPersonal, "EdgeDecision.note": freeText, "EdgeDecision.entry": notPersonal,
	"Evidence.sources": notPersonal,
	"HistoryEntry.id":  notPersonal, "HistoryEntry.kind": notPersonal, "HistoryEntry.messageId": freeText,
	"HistoryEntry.source": notPersonal, "HistoryEntry.survivor": notPersonal, "HistoryEntry.absorbed": notPersonal,
	"Event.id": notPersonal, "Event.messageId": freeText, "Event.type": notPersonal, "Event.name": freeText,
	"Event.source": notPersonal, "Event.properties": document, "Event.traits": document, "Event.context": document,
	// Review-queue cursors are the only ones that carry identifier
	// values, and support may not read the queue.
	"EventEdge.cursor": notPersonal, "PageInfo.endCursor": notPersonal,
	"AuditEdge.cursor": notPersonal,
	"AuditEntry.id":    notPersonal, "AuditEntry.actor": notPersonal, "AuditEntry.action": notPersonal,
	"AuditEntry.note": freeText, "AuditEntry.cause": freeText, "AuditEntry.profiles": notPersonal, "AuditEntry.merge": notPersonal,
	"AuditEntry.before": document, "AuditEntry.after": document, "AuditEntry.moved": document,
	"AuditEntry.edges": document, "AuditEntry.explanation": document,
	"ProfileChange.profileId": notPersonal, "ProfileChange.mergedInto": notPersonal,
	"Matching.model": notPersonal, "Matching.origin": notPersonal, "Matching.blocking": notPersonal, "Matching.recordIdTypes": notPersonal,
	"MatchingField.name": notPersonal, "MatchingField.kind": notPersonal, "MatchingSource.source": notPersonal,
	"MatchingSource.unusable": freeText, "MatchingColumn.column": notPersonal, "MatchingColumn.kind": notPersonal,
	"MatchingColumn.field": notPersonal, "MatchingColumn.reason": freeText,
	"Segment.key": notPersonal, "Segment.definition": freeText,
	"SegmentStatus.code": notPersonal, "SegmentStatus.state": notPersonal, "SegmentStatus.message": freeText,
	// Reached only by roles that see everything (the matrix refuses them to
	// support); classified all the same, for when a policy changes.
	"ProfileEdge.cursor": notPersonal, "SearchHit.field": notPersonal, "SearchHit.value": identifierValue,
	"ReviewEdge.cursor": opaque, "ReviewItem.id": opaque, "ReviewItem.reason": notPersonal,
	"PlannedChange.kind": notPersonal, "PlannedChange.profiles": notPersonal, "PlannedChange.reason": notPersonal,
	"MatchPreview.next": notPersonal, "BulkResult.id": opaque, "BulkResult.error": freeText, "BulkResult.code": notPersonal,
	"ApiKey.id": notPersonal, "ApiKey.role": notPersonal, "ApiKey.name": notPersonal, "ApiKey.state": notPersonal,
	"ApiKey.replacedBy": notPersonal, "NewApiKey.key": opaque,
	// Segments and computed traits.
	"ComputedTraitValue.key": notPersonal, "ComputedTraitValue.value": computedValue, "ComputedTraitValue.type": notPersonal,
	"ComputedTrait.key": notPersonal, "ComputedTrait.definition": freeText,
	"SegmentEdge.cursor": notPersonal, "ComputedTraitEdge.cursor": notPersonal,
	"DefinitionCheck.type": notPersonal, "DefinitionError.code": notPersonal, "DefinitionError.message": freeText, "DefinitionError.hint": freeText,
	"MembershipExplanation.profileId": notPersonal, "ExplainNode.text": freeText, "ExplainNode.value": anyValue,
	"ComputedTraitExplanation.profileId": notPersonal, "ComputedTraitExplanation.value": computedValue,
	"ComputedTraitExplanation.storedValue": computedValue, "ComputedTraitExplanation.type": notPersonal,
	// An unsaved definition has no key to mask its values by.
	"ComputedTraitPreview.type": notPersonal, "ComputedTraitSample.value": anyValue,
	"ExplainEvent.name": freeText, "ExplainEvent.messageId": freeText,
	"SegmentMembershipChange.sequence": notPersonal, "SegmentMembershipChange.segment": notPersonal,
	"SegmentMembershipChange.profileId": notPersonal, "SegmentMembershipChange.direction": notPersonal,
	"SegmentMembershipChange.reason": notPersonal,
	"ComputedTraitChange.sequence":   notPersonal, "ComputedTraitChange.trait": notPersonal, "ComputedTraitChange.profileId": notPersonal,
	"ComputedTraitChange.reason": notPersonal, "ComputedTraitChange.previous": computedValue, "ComputedTraitChange.value": computedValue,
	// Definition versions: a definition's source may quote anything; the
	// author is a key's public id, as the audit log's actor.
	"DefinitionVersion.key": notPersonal, "DefinitionVersion.definition": freeText, "DefinitionVersion.change": notPersonal,
	"DefinitionVersion.author": notPersonal, "DefinitionVersionEdge.cursor": notPersonal,
	// Destinations (admin only): a URL may carry a token, an error text
	// anything.
	"Destination.id": notPersonal, "Destination.name": notPersonal, "Destination.url": opaque,
	"Destination.segments": notPersonal, "Destination.disabledReason": freeText,
	"DestinationHealth.lastError": freeText, "DestinationHealth.retryingSequence": notPersonal,
	"DeadLetter.sequence": notPersonal, "DeadLetter.type": notPersonal, "DeadLetter.segment": notPersonal,
	"DeadLetter.profile": notPersonal, "DeadLetter.lastError": freeText,
	// Identifier policies name types, never values.
	"IdentifierPolicy.types": notPersonal,
	"Destination.traits":     notPersonal, "DeadLetter.trait": notPersonal, // computed trait keys
	"NewDestination.secret": opaque, "DeliveryAttempt.error": freeText,
	// Consent: a record's id holds the message ID (chosen by the client, so
	// possibly personal); its subject is an IdentifierRef, masked as such.
	"ProfileConsent.profileId": notPersonal, "PurposeConsent.purpose": notPersonal, "ConsentRecord.id": freeText,
	"ConsentRecord.purpose": notPersonal, "ConsentRecord.source": notPersonal, "ConsentRecord.recordedBy": notPersonal,
	"ConsentWithheld.reason": notPersonal, "Destination.purpose": notPersonal,
	// A destination's kind (webhook, segment forwarder): classified here as main left it unclassified.
	"Destination.kind": notPersonal,
	// Delivery jobs and attempts (admin only): ids, sequences and names;
	// a resync's webhook id holds a profile id (not personal, as above).
	"DeliveryJob.id": notPersonal, "DeliveryJob.destination": notPersonal, "DeliveryJob.kind": notPersonal,
	"DeliveryJob.segments": notPersonal, "DeliveryJob.traits": notPersonal, "DeliveryJob.error": freeText, "DeliveryJob.fromSequence": notPersonal,
	"DeliveryJob.toSequence": notPersonal, "DeliveryJob.asOfSequence": notPersonal,
	"Delivery.cursor": notPersonal, "Delivery.sequence": notPersonal, "Delivery.type": notPersonal,
	"Delivery.webhookId": notPersonal, "Delivery.error": freeText, "Delivery.job": notPersonal,
	// Erasure receipts (admin only) hold keyed hashes, never values.
	"ErasureReceipt.id": notPersonal, "ErasureReceipt.subjectHash": notPersonal,
	"ErasureReceipt.subjectHashes": notPersonal, "ErasureCount.kind": notPersonal,
	// Suppression lists (admin only) hold keyed hashes, never values.
	"SuppressionEntry.hash": notPersonal, "SuppressionEntry.type": notPersonal, "SuppressionScope.target": notPersonal,
	"SuppressionCount.type": notPersonal, "SuppressionChange.hashes": notPersonal, "Destination.channel": notPersonal,
	// Retention (admin only): event types and counts; a sweep's error
	// comes from the store and may quote anything.
	"RetentionRule.eventType": notPersonal, "RetentionCount.eventType": notPersonal, "RetentionSweep.error": freeText,
}

// MaskFields is the field middleware that masks for support callers.
func (r *Resolver) MaskFields(ctx context.Context, next graphql.Resolver) (any, error) {
	v, err := next(ctx)
	if err != nil || v == nil || !Masked(ctx) {
		return v, err
	}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !maskable(v) {
		return v, nil // objects, lists of them, numbers, times: their own fields are masked
	}
	fm, ok := FieldMasks[fc.Object+"."+fc.Field.Name]
	if !ok {
		fm = unclassified
	}
	if fm.apply == nil {
		return v, nil
	}
	return fm.apply(r.masking(), fc, v), nil
}

func (r *Resolver) masking() *mask.Rules {
	if r.Masking != nil {
		return r.Masking
	}
	return mask.Default
}

// maskable: the result types that can carry personal text.
func maskable(v any) bool {
	switch v.(type) {
	case string, *string, []string, []*string, schema.JSON, json.RawMessage:
		return true
	}
	return false
}

func mapStrings(v any, f func(string) string) any {
	switch x := v.(type) {
	case string:
		return f(x)
	case *string:
		if x == nil {
			return x
		}
		s := f(*x)
		return &s
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = f(s)
		}
		return out
	case []*string:
		out := make([]*string, len(x))
		for i, s := range x {
			out[i], _ = mapStrings(s, f).(*string)
		}
		return out
	}
	return v
}

// maskJSON masks a JSON result; what does not parse is hidden whole.
func maskJSON(r *mask.Rules, v any, key string) any {
	var data []byte
	switch x := v.(type) {
	case schema.JSON:
		data = x
	case json.RawMessage:
		data = x
	default:
		return mapStrings(v, scrub)
	}
	out, err := r.JSON(data, key)
	if err != nil {
		out = []byte(`"***"`)
	}
	if _, ok := v.(json.RawMessage); ok {
		return json.RawMessage(out)
	}
	return schema.JSON(out)
}

// parentResult is the object whose field is being resolved (a list
// item's result is a pointer to the list's element).
func parentResult(fc *graphql.FieldContext) any {
	for p := fc.Parent; p != nil; p = p.Parent {
		if p.Result != nil {
			v := reflect.ValueOf(p.Result)
			if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Pointer && !v.Elem().IsNil() {
				return v.Elem().Interface()
			}
			return p.Result
		}
	}
	return nil
}

// edgeIDRe finds edge IDs (graph.EdgeID: two identifier keys in base64) in
// free text, such as an audit entry's cause.
var edgeIDRe = regexp.MustCompile(`edge_[A-Za-z0-9_-]+`)

// scrub masks free text: edge IDs become opaque tokens, and what looks
// like an email, phone or IP address is masked.
func scrub(s string) string {
	return mask.Scrub(edgeIDRe.ReplaceAllStringFunc(s, opaqueToken))
}

// identifierTypeOf is the type of the identifier object a value belongs to
// (list elements' results are pointers to the list's items).
func identifierTypeOf(o any) string {
	switch x := o.(type) {
	case *graph.Identifier:
		return x.Type
	case graph.Key:
		return x.Type
	case *graph.Key:
		return x.Type
	case *schema.SearchHit:
		return x.Field
	}
	return ""
}

// opaqueKey keys opaque tokens: new each process, so a token cannot be
// checked against guessed values offline.
var opaqueKey = func() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}()

func opaqueToken(s string) string {
	m := hmac.New(sha256.New, opaqueKey)
	m.Write([]byte(s))
	return "masked_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// Scrub masks free text for a support caller's error messages.
func Scrub(s string) string { return scrub(s) }
