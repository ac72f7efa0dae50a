package pebble

import (
	cpebble "github.com/cockroachdb/pebble/v2"
)

// EditAuditEntry rewrites a stored audit entry behind the chain's API
// (nil deletes it), for the tampering tests.
func EditAuditEntry(s *Store, seq uint64, edit func([]byte) []byte) error {
	v, closer, err := s.db.Get(chainKey(seq))
	if err != nil {
		return err
	}
	data := edit(append([]byte(nil), v...))
	closer.Close()
	if data == nil {
		return s.db.Delete(chainKey(seq), cpebble.Sync)
	}
	return s.db.Set(chainKey(seq), data, cpebble.Sync)
}
