package match

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// pairStore holds the compared candidate pairs between blocking and
// scoring: per pair the record indexes, the rules that found it and its
// comparison vector, 12+nc bytes. Chunks stay in memory up to a budget;
// past it they go to a temporary file, read back in order of writing.
// Scoring needs every pair once, in any order, so a file read
// sequentially costs little, and a run's memory no longer grows with its
// candidates (5,000,000 records: about 120 million pairs, 2.8 GB).
type pairStore struct {
	size   int   // bytes per pair
	budget int64 // bytes held in memory before spilling
	dir    string

	mu       sync.Mutex
	mem      [][]byte
	held     int64
	file     *os.File
	w        *bufio.Writer
	spilled  int64 // bytes written to the file
	unlinked bool
	n        int64 // pairs
	err      error
}

// DefaultPairMemory is how many bytes of compared pairs a run keeps in
// memory before spilling to a temporary file: 512 MiB, the 23.6 million
// pairs of 1,000,000 noisy records less a few. Scoring reads the file
// once, sequentially, mostly from the page cache.
const DefaultPairMemory = 512 << 20

func newPairStore(nc int, budget int64, dir string) *pairStore {
	if budget <= 0 {
		budget = DefaultPairMemory
	}
	return &pairStore{size: 12 + nc, budget: budget, dir: dir}
}

// put appends one pair to buf.
func (s *pairStore) put(buf []byte, i, j int32, rules uint32, lv []uint8) []byte {
	buf = binary.LittleEndian.AppendUint32(buf, uint32(i))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(j))
	buf = binary.LittleEndian.AppendUint32(buf, rules)
	return append(buf, lv...)
}

// decode reads pair k of chunk.
func (s *pairStore) decode(chunk []byte, k int) (i, j int32, rules uint32, lv []uint8) {
	b := chunk[k*s.size : (k+1)*s.size]
	return int32(binary.LittleEndian.Uint32(b)), int32(binary.LittleEndian.Uint32(b[4:])),
		binary.LittleEndian.Uint32(b[8:]), b[12:]
}

// add takes a chunk of whole pairs; it keeps it or writes it out.
func (s *pairStore) add(chunk []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += int64(len(chunk) / s.size)
	if s.err != nil {
		return
	}
	if s.file == nil && s.held+int64(len(chunk)) <= s.budget {
		s.mem = append(s.mem, chunk)
		s.held += int64(len(chunk))
		return
	}
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "idgraph-pairs-*")
		if err != nil {
			s.err = fmt.Errorf("match: spill candidate pairs: %w", err)
			return
		}
		// Unlinked at once where the system allows it, so the file goes
		// with the process however that ends; close removes it otherwise.
		s.unlinked = os.Remove(f.Name()) == nil
		s.file, s.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	if _, err := s.w.Write(chunk); err != nil {
		s.err = fmt.Errorf("match: spill candidate pairs: %w", err)
	}
	s.spilled += int64(len(chunk))
}

// Spilled is how many bytes went to the temporary file.
func (s *pairStore) Spilled() int64 { return s.spilled }

// each calls f with chunks of whole pairs, the held ones then the file's,
// from workers goroutines at once. A chunk is valid during the call.
func (s *pairStore) each(workers int, f func(chunk []byte)) error {
	if s.err != nil {
		return s.err
	}
	chunks := make(chan []byte, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				f(c)
			}
		}()
	}
	for _, c := range s.mem {
		chunks <- c
	}
	var err error
	if s.file != nil {
		err = s.readFile(chunks)
	}
	close(chunks)
	wg.Wait()
	return err
}

func (s *pairStore) readFile(chunks chan<- []byte) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("match: spill candidate pairs: %w", err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("match: read spilled pairs: %w", err)
	}
	r := bufio.NewReaderSize(s.file, 1<<20)
	per := max(1, (1<<20)/s.size) * s.size
	for {
		buf := make([]byte, per)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if n%s.size != 0 {
				return fmt.Errorf("match: read spilled pairs: file cut short")
			}
			chunks <- buf[:n]
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("match: read spilled pairs: %w", err)
		}
	}
}

// close drops the held pairs and removes the file.
func (s *pairStore) close() error {
	s.mem = nil
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if !s.unlinked {
		if rerr := os.Remove(s.file.Name()); err == nil {
			err = rerr
		}
	}
	s.file = nil
	return err
}
