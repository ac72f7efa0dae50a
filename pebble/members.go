package pebble

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/graph"
)

// A member index entry (pi/ + profile ID + "/" + hmac(key)) holds the
// identifier's hash, then (format version 5) its type and value:
// uvarint(len(type)) + type + value. A members export reads its page's
// identifiers from these entries with one ordered scan, instead of a
// random lookup of each identifier record. Like the identifier record,
// the entry holds the value only outside the key, and an erasure deletes
// it with the record.

// memberValue is the member index value of the identifier k hashed h.
func memberValue(h []byte, k graph.Key) []byte {
	v := make([]byte, 0, len(h)+binary.MaxVarintLen64+len(k.Type)+len(k.Value))
	v = append(v, h...)
	v = binary.AppendUvarint(v, uint64(len(k.Type)))
	v = append(v, k.Type...)
	return append(v, k.Value...)
}

// memberHash is the identifier hash in a member index value.
func memberHash(v []byte) []byte { return v[:min(len(v), sha256.Size)] }

// errMemberEntry reports a member index value that cannot be decoded.
var errMemberEntry = errors.New("corrupt member index entry")

// memberIndexKey decodes the identifier key of a member index value; ok is
// false for a value holding only the hash (an entry the migration to
// version 5 left because its identifier record was gone). types shares
// the type strings among the keys decoded.
func memberIndexKey(v []byte, types map[string]string) (k graph.Key, ok bool, err error) {
	if len(v) == sha256.Size {
		return k, false, nil
	}
	rest := v[min(len(v), sha256.Size):]
	n, w := binary.Uvarint(rest)
	if len(v) < sha256.Size || w <= 0 || n > uint64(len(rest)-w) {
		return k, false, errMemberEntry
	}
	t, value := rest[w:w+int(n)], rest[w+int(n):]
	typ, seen := types[string(t)]
	if !seen {
		typ = string(t)
		types[typ] = typ
	}
	return graph.Key{Type: typ, Value: string(value)}, true, nil
}

// walkMembers calls fn with the member index value of every identifier
// that joined each group of profiles and the index of its group. One
// iterator walks the index for every group, in profile ID order: an
// iterator per profile cost most of a members export. v is valid only
// during the call.
func (s *Store) walkMembers(groups [][]string, fn func(group int, v []byte) error) error {
	type profile struct {
		id    string
		group int
	}
	var ps []profile
	for i, ids := range groups {
		for _, id := range ids {
			ps = append(ps, profile{id, i})
		}
	}
	slices.SortFunc(ps, func(a, b profile) int { return strings.Compare(a.id, b.id) })
	it, err := s.db.NewIter(&cpebble.IterOptions{LowerBound: pMember, UpperBound: prefixEnd(pMember)})
	if err != nil {
		return err
	}
	valid := it.First()
	var prefix []byte
	for _, p := range ps {
		prefix = append(append(append(prefix[:0], pMember...), p.id...), '/')
		// The next profile's entries usually follow the last one's (an
		// export's page is a run of IDs).
		valid = stepNear(it, valid, prefix)
		for ; valid && bytes.HasPrefix(it.Key(), prefix); valid = it.Next() {
			if err = fn(p.group, it.Value()); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	return errors.Join(err, it.Error(), it.Close())
}

// memberKeys reads the identifier keys that joined each group of
// profiles from the member index alone, with the index of the group each
// belongs to.
func (s *Store) memberKeys(groups [][]string) (keys []graph.Key, owner []int, err error) {
	types := map[string]string{}
	err = s.walkMembers(groups, func(group int, v []byte) error {
		k, ok, err := memberIndexKey(v, types)
		if ok {
			keys, owner = append(keys, k), append(owner, group)
		}
		return err
	})
	return keys, owner, err
}

// writeMemberKeys puts each identifier's type and value in its member
// index entries (the migration to format version 5), committing every
// few megabytes. An entry already holding them is left; one whose
// identifier record is gone keeps only the hash (readers skip it, as they
// skipped it before).
func writeMemberKeys(db *cpebble.DB) error {
	it, err := db.NewIter(&cpebble.IterOptions{LowerBound: pMember, UpperBound: prefixEnd(pMember)})
	if err != nil {
		return err
	}
	defer it.Close()
	b := db.NewBatch()
	defer func() { b.Close() }()
	for ok := it.First(); ok; ok = it.Next() {
		h := it.Value()
		if len(h) != sha256.Size {
			continue
		}
		raw, closer, err := db.Get(key(pIdentifier, h))
		if errors.Is(err, cpebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var n graph.Identifier
		err = jsonUnmarshal(raw, &n)
		closer.Close()
		if err != nil {
			return fmt.Errorf("identifier %x: %w", h, err)
		}
		if err := b.Set(it.Key(), memberValue(h, n.Key), nil); err != nil {
			return err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(cpebble.NoSync); err != nil {
				return err
			}
			b.Close()
			b = db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return b.Commit(cpebble.NoSync)
}
