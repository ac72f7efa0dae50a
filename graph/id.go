package graph

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

var idClock struct {
	sync.Mutex
	last int64
}

// NewID returns a new ID with the prefix whose text sorts by creation time
// (strictly increasing within a process), and the time it stands for.
func NewID(prefix string, now time.Time) (string, time.Time) {
	idClock.Lock()
	ns := now.UnixNano()
	if ns <= idClock.last {
		ns = idClock.last + 1
	}
	idClock.last = ns
	idClock.Unlock()
	var r [6]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%s_%016x%s", prefix, ns, hex.EncodeToString(r[:])), time.Unix(0, ns).UTC()
}
