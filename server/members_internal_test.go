package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idgraph/idgraph/graph"
)

// recordingWriter keeps the profiles written, in order.
type recordingWriter struct{ got []string }

func (r *recordingWriter) begin() {}
func (r *recordingWriter) flush() {}
func (r *recordingWriter) write(rows []ExportedMember) error {
	for _, m := range rows {
		r.got = append(r.got, m.Profile)
	}
	return nil
}

// TestMemberPipelineOrder: pages whose lookups end in any order are
// written in the order they were added, with at most lookAhead lookups
// running at once.
func TestMemberPipelineOrder(t *testing.T) {
	const lookAhead, pages = 3, 40
	out := &recordingWriter{}
	p := newMemberPipeline(context.Background(), lookAhead, out)
	var running, most atomic.Int64
	var want []string
	for i := range pages {
		id := fmt.Sprintf("p%02d", i)
		want = append(want, id)
		if err := p.add(func(context.Context) ([]ExportedMember, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			return []ExportedMember{{Profile: id}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.got, want) {
		t.Fatalf("written %v, want %v", out.got, want)
	}
	if m := most.Load(); m > lookAhead || m < 2 {
		t.Fatalf("%d lookups ran at once, want 2 to %d", m, lookAhead)
	}
}

// TestMemberPipelineError: a failed lookup stops the export: the pages
// before it are written, none after, and add and wait return the error.
func TestMemberPipelineError(t *testing.T) {
	out := &recordingWriter{}
	p := newMemberPipeline(context.Background(), 2, out)
	boom := errors.New("boom")
	var addErr error
	for i := range 20 {
		addErr = p.add(func(ctx context.Context) ([]ExportedMember, error) {
			if i == 3 {
				return nil, boom
			}
			return []ExportedMember{{Profile: fmt.Sprint(i)}}, nil
		})
		if addErr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(addErr, boom) {
		t.Errorf("add after the failure: %v, want boom", addErr)
	}
	if err := p.wait(); !errors.Is(err, boom) {
		t.Fatalf("wait: %v, want boom", err)
	}
	if !slices.Equal(out.got, []string{"0", "1", "2"}) {
		t.Fatalf("written %v, want the three pages before the failure", out.got)
	}
	if p.ctx.Err() == nil {
		t.Fatal("the lookups' context is not cancelled")
	}
}

// TestKeptData: the data of the members the consent gate let through
// stay with their IDs.
func TestKeptData(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	data := []*graph.ProfileData{{ID: "a"}, nil, {ID: "c"}, {ID: "d"}}
	for _, c := range []struct {
		kept []string
		want string
	}{
		{ids, "a - c d"},
		{[]string{"a", "c"}, "a c"},
		{[]string{"b", "d"}, "- d"},
		{[]string{"d"}, "d"},
		{nil, ""},
	} {
		got := keptData(ids, data, c.kept)
		var s []string
		for _, d := range got {
			if d == nil {
				s = append(s, "-")
			} else {
				s = append(s, d.ID)
			}
		}
		if len(got) != len(c.kept) || strings.Join(s, " ") != c.want {
			t.Errorf("kept %q: %q, want %q", c.kept, s, c.want)
		}
	}
}
