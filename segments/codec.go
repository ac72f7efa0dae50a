package segments

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// stateCodecV1 starts a ProfileState in the compact encoding. JSON never
// starts with this byte (a JSON text starts with white space or '{'), so
// a state written as JSON before the encoding existed still reads: no
// migration is needed, and each state is rewritten compactly at its next
// save.
const stateCodecV1 = 0x01

// EncodeState is the compact binary encoding of a profile state, which
// the stores write (a state of 150 definitions is a fifth of its JSON and
// encodes several times faster). DecodeState reads it and the JSON of
// states written before it. Entries and counts are written in key order,
// so equal states encode to equal bytes.
//
//	0x01 rev:varint profile:str definitions:str absorbed:str
//	counts:uvarint {type:str n:varint}
//	entries:uvarint {ref:str version:varint flags:byte [since:time] [value] [deadline:time]}
//	value = type:str flags:byte [bool:byte] [number:8 bytes] [string:str] [time:time]
//	str = len:uvarint bytes; time = seconds:varint nanoseconds:uvarint (UTC)
func EncodeState(st *ProfileState) []byte {
	return AppendState(make([]byte, 0, 64+len(st.Entries)*32), st)
}

// AppendState appends EncodeState's encoding of st to b.
func AppendState(b []byte, st *ProfileState) []byte {
	b = append(b, stateCodecV1)
	b = binary.AppendVarint(b, st.Rev)
	b = appendStr(b, st.Profile)
	b = appendStr(b, st.Definitions)
	b = appendStr(b, st.Identity.Absorbed)
	var small [8]string // a state's few keys sorted without an allocation
	b = binary.AppendUvarint(b, uint64(len(st.Identity.Counts)))
	for _, t := range appendSortedKeys(small[:0], st.Identity.Counts) {
		b = appendStr(b, t)
		b = binary.AppendVarint(b, int64(st.Identity.Counts[t]))
	}
	b = binary.AppendUvarint(b, uint64(len(st.Entries)))
	for _, rs := range appendSortedKeys(small[:0], st.Entries) {
		e := st.Entries[rs]
		b = appendStr(b, rs)
		b = binary.AppendVarint(b, int64(e.Version))
		var flags byte
		if e.Member {
			flags |= entryMember
		}
		if !e.Since.IsZero() {
			flags |= entrySince
		}
		if e.Value != nil {
			flags |= entryValue
		}
		if !e.Deadline.IsZero() {
			flags |= entryDeadline
		}
		b = append(b, flags)
		if flags&entrySince != 0 {
			b = appendTime(b, e.Since)
		}
		if e.Value != nil {
			b = appendValue(b, e.Value)
		}
		if flags&entryDeadline != 0 {
			b = appendTime(b, e.Deadline)
		}
	}
	return b
}

// Flags of an encoded entry and value: which fields follow.
const (
	entryMember = 1 << iota
	entrySince
	entryValue
	entryDeadline
)

const (
	valueBool = 1 << iota
	valueNumber
	valueString
	valueTime
)

func appendValue(b []byte, v *Value) []byte {
	b = appendStr(b, v.Type)
	var flags byte
	if v.Bool {
		flags |= valueBool
	}
	if v.Number != 0 {
		flags |= valueNumber
	}
	if v.String != "" {
		flags |= valueString
	}
	if !v.Time.IsZero() {
		flags |= valueTime
	}
	b = append(b, flags)
	if flags&valueNumber != 0 {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Number))
	}
	if flags&valueString != 0 {
		b = appendStr(b, v.String)
	}
	if flags&valueTime != 0 {
		b = appendTime(b, v.Time)
	}
	return b
}

func appendSortedKeys[V any](ks []string, m map[string]V) []string {
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// DecodeState reads a state written by EncodeState, or as JSON (before
// the compact encoding).
func DecodeState(data []byte) (*ProfileState, error) {
	return (&StateDecoder{}).Decode(data)
}

// A StateDecoder is DecodeState for many states, such as a page of them:
// the strings every state repeats (entry keys, identifier types, the
// definitions' print) are allocated once, not once a state (a state of
// 150 definitions was 150 allocations of its keys). Not safe for
// concurrent use.
type StateDecoder struct {
	names map[string]string
}

// maxNames bounds a StateDecoder's shared strings (a page's states repeat
// a few hundred; corrupt or hostile data cannot grow it without bound).
const maxNames = 4096

// Decode reads a state as DecodeState does.
func (sd *StateDecoder) Decode(data []byte) (*ProfileState, error) {
	st := &ProfileState{}
	if len(data) == 0 || data[0] != stateCodecV1 {
		if err := json.Unmarshal(data, st); err != nil {
			return nil, fmt.Errorf("segments: decode state: %w", err)
		}
		return st, nil
	}
	d := decoder{b: data[1:]}
	st.Rev = d.varint()
	st.Profile = d.str()
	st.Definitions = sd.name(&d)
	st.Identity.Absorbed = d.str()
	if n := d.count(); n > 0 {
		st.Identity.Counts = make(map[string]int, n)
		for range n {
			t := sd.name(&d)
			st.Identity.Counts[t] = int(d.varint())
		}
	}
	if n := d.count(); n > 0 {
		st.Entries = make(map[string]Entry, n)
		for range n {
			rs := sd.name(&d)
			e := Entry{Version: int(d.varint())}
			flags := d.byte()
			e.Member = flags&entryMember != 0
			if flags&entrySince != 0 {
				e.Since = d.time()
			}
			if flags&entryValue != 0 {
				e.Value = d.value()
			}
			if flags&entryDeadline != 0 {
				e.Deadline = d.time()
			}
			st.Entries[rs] = e
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("segments: decode state: %w", d.err)
	}
	return st, nil
}

// decoder reads the compact encoding; the first error sticks and every
// read after it returns zero values.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated state")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of items, each at least one byte long: more than
// the bytes left is corrupt (and would allocate without bound).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.count()
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// name reads a string that other states repeat, shared with them.
func (sd *StateDecoder) name(d *decoder) string {
	n := d.count()
	b := d.b[:n]
	d.b = d.b[n:]
	if s, ok := sd.names[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(sd.names) < maxNames {
		if sd.names == nil {
			sd.names = map[string]string{}
		}
		sd.names[s] = s
	}
	return s
}

func (d *decoder) time() time.Time {
	s := d.varint()
	ns := d.uvarint()
	if ns >= 1e9 {
		d.fail(errors.New("bad time"))
		return time.Time{}
	}
	return time.Unix(s, int64(ns)).UTC()
}

func (d *decoder) value() *Value {
	v := &Value{Type: d.str()}
	flags := d.byte()
	v.Bool = flags&valueBool != 0
	if flags&valueNumber != 0 {
		if len(d.b) < 8 {
			d.fail(errShort)
			return v
		}
		v.Number = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
	}
	if flags&valueString != 0 {
		v.String = d.str()
	}
	if flags&valueTime != 0 {
		v.Time = d.time()
	}
	return v
}

// changeCodecV1 starts a ChangeRecord in the compact encoding (see
// stateCodecV1: JSON never starts with it).
const changeCodecV1 = 0x01

// EncodeChange is the compact binary encoding of a change record, which
// the embedded store writes (a save of an order re-evaluates tens of
// computed values, each a record); DecodeChange reads it and the JSON of
// records written before it.
//
//	0x01 sequence:uvarint segment:str trait:str version:varint profile:str
//	direction:str reason:str time:time flags:byte [previous:value] [value:value]
func EncodeChange(c *ChangeRecord) []byte {
	b := make([]byte, 0, 96)
	b = append(b, changeCodecV1)
	b = binary.AppendUvarint(b, c.Sequence)
	b = appendStr(b, c.Segment)
	b = appendStr(b, c.Trait)
	b = binary.AppendVarint(b, int64(c.Version))
	b = appendStr(b, c.Profile)
	b = appendStr(b, c.Direction)
	b = appendStr(b, c.Reason)
	b = appendTime(b, c.Time)
	var flags byte
	if c.Previous != nil {
		flags |= 1
	}
	if c.Value != nil {
		flags |= 2
	}
	b = append(b, flags)
	if c.Previous != nil {
		b = appendValue(b, c.Previous)
	}
	if c.Value != nil {
		b = appendValue(b, c.Value)
	}
	return b
}

// DecodeChange reads a record written by EncodeChange, or as JSON.
func DecodeChange(data []byte) (*ChangeRecord, error) {
	c := &ChangeRecord{}
	if len(data) == 0 || data[0] != changeCodecV1 {
		if err := json.Unmarshal(data, c); err != nil {
			return nil, fmt.Errorf("segments: decode change: %w", err)
		}
		return c, nil
	}
	d := decoder{b: data[1:]}
	c.Sequence = d.uvarint()
	c.Segment = d.str()
	c.Trait = d.str()
	c.Version = int(d.varint())
	c.Profile = d.str()
	c.Direction = d.str()
	c.Reason = d.str()
	c.Time = d.time()
	flags := d.byte()
	if flags&1 != 0 {
		c.Previous = d.value()
	}
	if flags&2 != 0 {
		c.Value = d.value()
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, fmt.Errorf("segments: decode change: %w", d.err)
	}
	return c, nil
}
