package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/idgraph/idgraph/server"
	"github.com/idgraph/idgraph/traffic"
)

// ReplayOptions configure a replay of a traffic directory (idgraph synth
// traffic) through /v1/batch.
type ReplayOptions struct {
	BatchSize int // messages per call (default 100)
	// Clients is the number of concurrent senders (default 1: the stream's
	// order exactly).
	Clients int
	// Progress, when set, receives a progress line every few seconds.
	Progress io.Writer
}

// ReplayResult is what a replay did.
type ReplayResult struct {
	Messages, Batches  int
	Elapsed            time.Duration
	PerSecond          float64
	BatchP50, BatchP99 time.Duration
	// FailedBatches were not acknowledged, retries included.
	FailedBatches int
}

func (r ReplayResult) String() string {
	return fmt.Sprintf("%d messages in %d batches in %v: %.0f messages/s, batch latency p50 %v p99 %v, %d failed batches",
		r.Messages, r.Batches, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.BatchP50.Round(time.Microsecond), r.BatchP99.Round(time.Microsecond), r.FailedBatches)
}

type replayBatch struct {
	body []byte
	n    int
}

// Replay sends dir/messages.jsonl in /v1/batch calls. With one client the
// messages go in the file's order. With several, each person's messages go
// through one client (person modulo clients), in their order; the profiles
// may then differ from a sequential run only where people share
// identifiers (a family tablet, a library computer, a junk email), whose
// messages now race. A batch answered with an error is counted and the
// replay goes on; one lost on the network after the client's retries
// stops it. Use Observe to count the answers' statuses.
func (c *Client) Replay(ctx context.Context, dir string, opts ReplayOptions) (ReplayResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 100
	}
	opts.Clients = max(opts.Clients, 1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		mu       sync.Mutex
		lat      []time.Duration
		res      ReplayResult
		firstErr error
		wg       sync.WaitGroup
	)
	queues := make([]chan replayBatch, opts.Clients)
	for i := range queues {
		queues[i] = make(chan replayBatch, 4)
		wg.Go(func() {
			for b := range queues[i] {
				if ctx.Err() != nil {
					continue // drain: the reader may still be sending
				}
				t := time.Now()
				err := c.PostWriteJSON(ctx, "/v1/batch", b.body, nil)
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				res.Batches++
				if err == nil {
					res.Messages += b.n
				} else {
					res.FailedBatches++
					if firstErr == nil {
						firstErr = fmt.Errorf("replay: batch: %w", err)
					}
					if se := (*StatusError)(nil); !errors.As(err, &se) {
						cancel(err) // the server is gone: stop, rather than retry every batch
					}
				}
				mu.Unlock()
			}
		})
	}

	// Batches are built by one reader, a buffer per client, so that each
	// client's batches keep the file's order.
	const envelope = len(`{"batch":[]}`)
	bufs := make([]*bytes.Buffer, opts.Clients)
	counts := make([]int, opts.Clients)
	flush := func(i int) {
		if counts[i] == 0 {
			return
		}
		bufs[i].WriteString("]}")
		queues[i] <- replayBatch{body: bufs[i].Bytes(), n: counts[i]}
		bufs[i], counts[i] = nil, 0
	}
	start := time.Now()
	lastProgress := start
	read := 0
	err := traffic.ReadMessages(dir, func(m traffic.Message) error {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		i := m.Person % opts.Clients
		if counts[i] > 0 && bufs[i].Len()+len(m.Body)+1+len("]}") > server.MaxBatchBytes {
			flush(i)
		}
		if bufs[i] == nil {
			bufs[i] = bytes.NewBuffer(make([]byte, 0, min(opts.BatchSize*(len(m.Body)+64)+envelope, server.MaxBatchBytes)))
			bufs[i].WriteString(`{"batch":[`)
		}
		if counts[i] > 0 {
			bufs[i].WriteByte(',')
		}
		bufs[i].Write(m.Body)
		counts[i]++
		if counts[i] >= opts.BatchSize {
			flush(i)
		}
		read++
		if opts.Progress != nil && time.Since(lastProgress) > 2*time.Second {
			lastProgress = time.Now()
			fmt.Fprintf(opts.Progress, "\r%d messages read, %.0f messages/s ", read, float64(read)/time.Since(start).Seconds())
		}
		return nil
	})
	if err == nil {
		for i := range queues {
			flush(i)
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	if opts.Progress != nil {
		fmt.Fprintln(opts.Progress)
	}
	res.Elapsed = time.Since(start)
	res.PerSecond = float64(res.Messages) / res.Elapsed.Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.BatchP50, res.BatchP99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if firstErr != nil {
		if cause := context.Cause(ctx); err != nil && errors.Is(err, cause) {
			err = nil // the reader stopped because a batch failed: firstErr says why
		}
		err = errors.Join(firstErr, err)
		if res.FailedBatches > 1 {
			err = fmt.Errorf("%w (and %d more failed batches)", err, res.FailedBatches-1)
		}
	}
	return res, err
}
