package match

import (
	"testing"
)

// The embedded model is what TrainSegmentModel makes today: a change to
// the engine or the generator that moves it fails here until
// `go generate ./match` is run.
func TestSegmentModelIsFresh(t *testing.T) {
	m, err := TrainSegmentModel()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := SegmentModel().Version, m.Version; got != want {
		t.Fatalf("segment_model.json is %s, training gives %s: run go generate ./match", got, want)
	}
}

// The built-in model is scored on people it was not trained on (another
// seed), as Segment traits.
func TestSegmentModelHeldOut(t *testing.T) {
	tab, _ := Synthesize(SynthOptions{Records: 4000, Seed: SegmentModelSeed + 1})
	cfg := SegmentConfig()
	rep, err := Evaluate(SegmentTable(tab), nil, EvalOptions{IDColumn: "rec_id", TruthPattern: `rec-(\d+)-`,
		Config: cfg, Options: Options{Model: SegmentModel()}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cluster.Precision < 0.95 || rep.Cluster.Recall < 0.9 || rep.BlockingRecall < 0.98 {
		t.Errorf("held-out cluster P %.4f R %.4f, blocking recall %.4f; want ≥ 0.95, 0.9, 0.98",
			rep.Cluster.Precision, rep.Cluster.Recall, rep.BlockingRecall)
	}
}

func TestSegmentModelInTheGraph(t *testing.T) {
	g := NewGraphMatcher(SegmentModel(), true)
	john := map[string]string{"firstName": "John", "lastName": "Smith", "email": "john.smith@example.com",
		"birthday": "1980-05-17", "address.street": "12 Acacia Avenue", "address.city": "Springfield", "address.postalCode": "4001"}
	cases := []struct {
		name   string
		other  map[string]string
		accept bool
	}{
		{"CRM typo, no email", map[string]string{"name": "Jon Smiht", "birthday": "17/05/1980",
			"address.street": "12 Acacia Ave", "address.postalCode": "4001"}, true},
		{"same name, other person", map[string]string{"firstName": "John", "lastName": "Smith", "email": "jsmith77@mail.com",
			"birthday": "1965-11-02", "address.city": "Shelbyville", "address.postalCode": "2600"}, false},
		{"household member", map[string]string{"firstName": "Mary", "lastName": "Smith", "birthday": "1982-02-09",
			"address.street": "12 Acacia Avenue", "address.city": "Springfield", "address.postalCode": "4001"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shared := false
			keys := map[string]bool{}
			for _, k := range g.BlockingKeys(john) {
				keys[k] = true
			}
			for _, k := range g.BlockingKeys(c.other) {
				shared = shared || keys[k]
			}
			s := g.Score(john, c.other)
			if got := s.Probability >= 0.95 && !s.Hold; got != c.accept {
				t.Errorf("probability %.4f held %v: accept %v, want %v\n%s", s.Probability, s.Hold, got, c.accept, s.Explanation)
			}
			if c.accept && !shared {
				t.Error("blocking gives the pair no common key: it would never be compared")
			}
		})
	}
}
