package pebble

import (
	"encoding/binary"
	"math"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/idgraph/idgraph/retention"
)

// pEventTime (format version 7) orders the events by timestamp, so that a
// retention sweep reads only the events older than its latest cutoff
// instead of every event. The value is the event's retention type
// (retention.EventType), so that the sweep passes over the events a
// longer rule keeps without reading them. An entry is written and deleted
// with its event, in the same batch.
var pEventTime = []byte("et/") // + time (8 bytes) + hmac(message ID) → retention.EventType

// eventTimeLen is the length of an entry's time.
const eventTimeLen = 8

func eventTimeKey(at time.Time, messageHash []byte) []byte {
	return key(pEventTime, eventTimeBytes(at), messageHash)
}

// eventTimeBytes is timestampBytes clamped to the times UnixNano holds
// (1678 to 2262): the order of times outside it is undefined, and a sweep
// must find every event before its cutoff. Times past either end sort at
// that end, which keeps them on the same side of every cutoff a policy
// can give (now less at most 100 years).
func eventTimeBytes(t time.Time) []byte {
	var ns int64
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		ns = math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		ns = math.MaxInt64
	default:
		ns = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(nil, uint64(ns)^(1<<63))
}

// eventTimeOf reads an entry's time back.
func eventTimeOf(k []byte) time.Time {
	ts := binary.BigEndian.Uint64(k[len(pEventTime) : len(pEventTime)+eventTimeLen])
	return time.Unix(0, int64(ts^(1<<63))).UTC()
}

// writeEventTimes writes the event time index of an older store once,
// from its events.
func writeEventTimes(db *cpebble.DB) error {
	m := newMigrationBatch(db)
	defer m.close()
	err := scanDB(db, pEvent, func(k, v []byte) error {
		var h eventHead
		if err := jsonUnmarshal(v, &h); err != nil {
			return err
		}
		return m.put(eventTimeKey(h.Timestamp, k[len(pEvent):]), []byte(retention.EventType(h.event())))
	})
	if err != nil {
		return err
	}
	return m.commit()
}

// migrationBatch writes a migration's derived entries in unsynced batches
// of about 4 MB; the synced batch that stamps the format version makes
// them durable.
type migrationBatch struct {
	db *cpebble.DB
	b  *cpebble.Batch
}

func newMigrationBatch(db *cpebble.DB) *migrationBatch {
	return &migrationBatch{db: db, b: db.NewBatch()}
}

func (m *migrationBatch) put(k, v []byte) error {
	if err := m.b.Set(k, v, nil); err != nil {
		return err
	}
	if m.b.Len() > 4<<20 {
		return m.commit()
	}
	return nil
}

// commit commits what was put and starts a new batch.
func (m *migrationBatch) commit() error {
	err := m.b.Commit(cpebble.NoSync)
	m.b.Close()
	m.b = m.db.NewBatch()
	return err
}

func (m *migrationBatch) close() { m.b.Close() }
