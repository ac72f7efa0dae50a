package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/idgraph/idgraph/match"
)

// runSynth writes a noisy, labelled FEBRL-like CSV for idgraph eval:
// about N/2 people with typo'd, reformatted and partly missing duplicates,
// plus household members and common names as hard negatives.
func runSynth(ctx context.Context, args []string) error {
	_ = ctx
	if len(args) > 0 && args[0] == "traffic" {
		return runSynthTraffic(args[1:])
	}
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	n := fs.Int("records", 10000, "records to write (originals + duplicates)")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same file)")
	out := fs.String("out", "", "output CSV file (default: standard output)")
	household := fs.Float64("household", 0.15, "share of people who join an earlier person's household")
	common := fs.Float64("common-names", 0.03, "share of people with one of a few very common names")
	shape := fs.String("shape", "febrl", "febrl (FEBRL's columns, the clean reference) or messy (multi-token names with titles, redundant name columns, approximate dates, many missing fields)")
	namesakes := fs.Float64("namesakes", 0.06, "messy shape: share of people who take an earlier person's name, birth year and town")
	segment := fs.Bool("segment", false, "name the columns as Segment identify traits (firstName, address.city, …) for the built-in model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *n < 1 {
		return fmt.Errorf("usage: idgraph synth --records N [--seed S] [--shape febrl|messy] [--out FILE.csv]")
	}
	if !slices.Contains(match.SynthShapes, *shape) {
		return fmt.Errorf("synth: --shape %q: want one of %v", *shape, match.SynthShapes)
	}
	if *segment && *shape != "febrl" {
		return fmt.Errorf("synth: --segment renames the febrl shape's columns; it does not apply to --shape %s", *shape)
	}
	opt := match.SynthOptions{Records: *n, Seed: *seed, Household: *household, CommonName: *common, Shape: *shape, Namesakes: *namesakes}
	if *shape == "messy" {
		opt.CommonName = 0 // the shape's own default
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "common-names" {
				opt.CommonName = *common
			}
		})
	}
	t, st := match.Synthesize(opt)
	if *segment {
		t = match.SegmentTable(t)
	}
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := t.WriteCSV(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if *out != "" {
		if err := w.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "synth: %d records, %d people, %d duplicates, %d true pairs, %d household members, %d namesakes, %d common-name people\n",
		st.Records, st.People, st.Duplicates, st.TruePairs, st.Households, st.Namesakes, st.CommonName)
	return nil
}
