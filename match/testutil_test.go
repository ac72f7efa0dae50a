package match

import (
	"io"
	"strings"
	"testing"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// runDetected runs the whole engine on a table with detected columns,
// keeping the candidates and scored pairs for the test to look at.
func runDetected(t *testing.T, tab *Table) (*Dataset, *Result) {
	t.Helper()
	cfg, _ := Detect(tab.Header, tab.Rows, "")
	ds, err := NewDataset(cfg, tab.Records(cfg.IDColumn))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ds, Options{KeepPairs: true})
	if err != nil {
		t.Fatal(err)
	}
	return ds, res
}
