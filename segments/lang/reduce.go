package lang

import (
	"slices"
	"strconv"
)

// reduce applies a chain's reducer to the events that passed its filters
// (in event order) and returns the value and the events that decided it.
func (e *evaluator) reduce(st *Step, evs []*Event) (Value, []*Event) {
	switch st.Name {
	case "count":
		return numVal(float64(len(evs))), evs
	case "exists":
		return boolVal(len(evs) > 0), evs
	case "first_at", "last_at":
		if len(evs) == 0 {
			return Value{}, nil
		}
		ev := evs[0]
		if st.Name == "last_at" {
			ev = evs[len(evs)-1]
		}
		return timeVal(ev.Timestamp), []*Event{ev}
	case "sum", "avg", "min", "max":
		return e.numeric(st, evs)
	case "first", "last":
		order := evs
		if st.Name == "last" {
			order = slices.Clone(evs)
			slices.Reverse(order)
		}
		for _, ev := range order {
			if v, ok := e.scalarProp(ev, st.prop.path); ok {
				return v, []*Event{ev}
			}
		}
		return Value{}, nil
	}
	// distinct, distinct_count, mode: group equal values.
	type group struct {
		v     Value
		count int
		evs   []*Event
	}
	groups := map[string]*group{}
	for _, ev := range evs {
		v, ok := e.scalarProp(ev, st.prop.path)
		if !ok {
			continue
		}
		k := valueKey(v)
		g := groups[k]
		if g == nil {
			g = &group{v: v}
			groups[k] = g
		}
		g.count++
		g.evs = append(g.evs, ev)
	}
	sorted := make([]*group, 0, len(groups))
	for _, g := range groups {
		sorted = append(sorted, g)
	}
	slices.SortFunc(sorted, func(a, b *group) int { return totalCompare(a.v, b.v) })
	switch st.Name {
	case "distinct_count":
		return numVal(float64(len(sorted))), evs
	case "distinct":
		l := make([]Value, len(sorted))
		for i, g := range sorted {
			l[i] = g.v
		}
		return Value{Type: TypeList, List: l}, evs
	}
	// mode: the most frequent value; among equally frequent ones the
	// smallest in the total order (booleans, numbers, strings).
	var best *group
	for _, g := range sorted {
		if best == nil || g.count > best.count {
			best = g
		}
	}
	if best == nil {
		return Value{}, nil
	}
	return best.v, best.evs
}

// valueKey identifies a value for grouping: equal values, equal keys.
func valueKey(v Value) string {
	if v.Type == TypeNumber && v.Num == 0 {
		v.Num = 0 // -0 and 0 are one value
	}
	return strconv.Itoa(int(v.Type)) + v.String()
}

// scalarProp reads a property for first/last/mode/distinct: a single value,
// or false when absent (null counts as absent) or not a single value
// (skipped and counted).
func (e *evaluator) scalarProp(ev *Event, path []string) (Value, bool) {
	raw, ok := propRaw(ev.Properties, path)
	if !ok {
		return Value{}, false
	}
	v, ok := FromAny(raw)
	if !ok || !v.isScalar() {
		e.skipped++
		return Value{}, false
	}
	return v, true
}

// numeric applies sum/avg/min/max. Numbers and numeric strings count;
// absent values are ignored; anything else is skipped and counted.
func (e *evaluator) numeric(st *Step, evs []*Event) (Value, []*Event) {
	var sum, lo, hi float64
	n := 0
	var used []*Event
	var loEv, hiEv *Event
	for _, ev := range evs {
		raw, ok := propRaw(ev.Properties, st.prop.path)
		if !ok {
			continue
		}
		v, ok := FromAny(raw)
		if ok && v.Type == TypeString && isNumericString(v.Str) {
			f, err := strconv.ParseFloat(v.Str, 64)
			v, ok = numVal(f), err == nil
		}
		if !ok || v.Type != TypeNumber {
			e.skipped++
			continue
		}
		if n == 0 || v.Num < lo {
			lo, loEv = v.Num, ev
		}
		if n == 0 || v.Num > hi {
			hi, hiEv = v.Num, ev
		}
		sum += v.Num
		n++
		used = append(used, ev)
	}
	switch st.Name {
	case "sum":
		if v, ok := numberOK(sum); ok {
			return v, used
		}
		return Value{}, used
	case "avg":
		if n == 0 {
			return Value{}, nil
		}
		if v, ok := numberOK(sum / float64(n)); ok {
			return v, used
		}
		return Value{}, used
	case "min":
		if n == 0 {
			return Value{}, nil
		}
		return numVal(lo), []*Event{loEv}
	}
	if n == 0 {
		return Value{}, nil
	}
	return numVal(hi), []*Event{hiEv}
}
