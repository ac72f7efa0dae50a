package traffic

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/idgraph/idgraph/graph"
)

// Score is pairwise precision and recall of an assignment of items
// (identifiers, or events) to profiles against the truth: of the pairs put
// in one profile, how many are one person's (precision), and of one
// person's pairs, how many were put in one profile (recall).
type Score struct {
	Precision, Recall, F1    float64
	Correct, Predicted, True int64
	Items, Profiles          int
	LargestProfile           int
	OverMerged, UnderMerged  int // profiles holding several people; people spread over several profiles
}

func (s Score) String() string {
	return fmt.Sprintf("precision %.4f recall %.4f F1 %.4f (%d items in %d profiles, largest %d; %d profiles hold several people, %d people span several profiles)",
		s.Precision, s.Recall, s.F1, s.Items, s.Profiles, s.LargestProfile, s.OverMerged, s.UnderMerged)
}

// Assignment places one item of a person in a profile.
type Assignment struct {
	Profile string
	Person  int
}

// ScorePartition scores where each identifier ended (its profile's ID)
// against owner. Identifiers missing from either side are left out: a
// value never sent cannot be placed, a shared one cannot be placed right.
func ScorePartition(owner map[graph.Key]int, profileOf map[graph.Key]string) Score {
	var as []Assignment
	for k, p := range profileOf {
		if person, ok := owner[k]; ok {
			as = append(as, Assignment{p, person})
		}
	}
	return ScoreAssignments(as)
}

// ScoreAssignments scores items placed in profiles; an event is placed in
// the profile that shows it first (that of its highest-priority identifier).
func ScoreAssignments(as []Assignment) Score {
	cells := map[Assignment]int64{}
	byProfile := map[string]int64{}
	byPerson := map[int]int64{}
	var s Score
	for _, a := range as {
		s.Items++
		cells[a]++
		byProfile[a.Profile]++
		byPerson[a.Person]++
	}
	pairs := func(n int64) int64 { return n * (n - 1) / 2 }
	people := map[string]int{}
	spread := map[int]int{}
	for a, n := range cells {
		s.Correct += pairs(n)
		people[a.Profile]++
		spread[a.Person]++
	}
	for p, n := range byProfile {
		s.Predicted += pairs(n)
		s.LargestProfile = max(s.LargestProfile, int(n))
		if people[p] > 1 {
			s.OverMerged++
		}
	}
	for person, n := range byPerson {
		s.True += pairs(n)
		if spread[person] > 1 {
			s.UnderMerged++
		}
	}
	s.Profiles = len(byProfile)
	s.Precision, s.Recall = ratio(s.Correct, s.Predicted), ratio(s.Correct, s.True)
	if s.Precision+s.Recall > 0 {
		s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
	}
	return s
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// WriteDir writes the stream as files: messages.jsonl (one Segment call a
// line, in delivery order), senders.txt (the person who sent each line),
// crm.csv (for idgraph import --identifiers crm_id,email,phone) and
// truth.csv (type, value, person of every identifier that has one owner).
func (s *Stream) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, fn func(w *bufio.Writer) error) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if err := fn(w); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	err := write("messages.jsonl", func(w *bufio.Writer) error {
		for _, m := range s.Messages {
			w.Write(m.Body)
			w.WriteByte('\n')
		}
		return nil
	})
	if err == nil {
		err = write("senders.txt", func(w *bufio.Writer) error {
			for _, m := range s.Messages {
				fmt.Fprintln(w, m.Person)
			}
			return nil
		})
	}
	if err == nil {
		err = write("crm.csv", func(w *bufio.Writer) error {
			c := csv.NewWriter(w)
			c.Write([]string{"crm_id", "email", "phone", "firstName", "lastName", "birthday"})
			for _, r := range s.Records {
				c.Write([]string{r.Identifiers["crm_id"], r.Identifiers["email"], r.Identifiers["phone"],
					fmt.Sprint(r.Traits["firstName"]), fmt.Sprint(r.Traits["lastName"]), fmt.Sprint(r.Traits["birthday"])})
			}
			c.Flush()
			return c.Error()
		})
	}
	if err == nil {
		err = write("truth.csv", func(w *bufio.Writer) error {
			c := csv.NewWriter(w)
			c.Write([]string{"type", "value", "person"})
			for _, k := range sortedKeys(s.Owner) {
				c.Write([]string{k.Type, k.Value, strconv.Itoa(s.Owner[k])})
			}
			c.Flush()
			return c.Error()
		})
	}
	if err == nil {
		err = write("stats.json", func(w *bufio.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(s.Stats)
		})
	}
	return err
}
