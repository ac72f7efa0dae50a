package match

import (
	"runtime"
	"testing"
)

// Incremental matching builds a dataset per batch of a few records: its
// interned values must cost what they hold, not a whole 2 MB page per
// column (which made importing 50,000 messy records take minutes).
func TestSmallDatasetAllocatesLittle(t *testing.T) {
	cfg := &Config{Fields: []Field{
		{Name: "given", Kind: KindGivenName}, {Name: "surname", Kind: KindSurname},
		{Name: "dob", Kind: KindDate}, {Name: "city", Kind: KindCity}, {Name: "email", Kind: KindEmail},
	}}
	recs := []Record{
		{ID: "1", Fields: map[string]string{"given": "ann", "surname": "lee", "dob": "1980-01-02", "city": "leeds", "email": "ann@x.io"}},
		{ID: "2", Fields: map[string]string{"given": "bob", "surname": "ray", "dob": "1971-03-04", "city": "york", "email": "bob@y.io"}},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := NewDataset(cfg, recs); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 256<<10 {
		t.Errorf("a two-record dataset allocates %d KB, want under 256 KB", per>>10)
	}
}
