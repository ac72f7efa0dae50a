package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/idgraph/idgraph/match"
)

// runEval measures the matching engine on a labelled CSV: it detects the
// columns, trains without labels, blocks, scores and clusters, then
// compares with the truth encoded in the record IDs.
func runEval(ctx context.Context, args []string) (err error) {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	link := fs.String("link", "", "second CSV to link with FILE (only pairs across the files count)")
	idCol := fs.String("id-column", "", "record-ID column (default: detected)")
	maxRecords := fs.Int("max-records", match.DefaultMaxRecords, "refuse a file with more records than this (a run needs about 1 GB per million)")
	truth := fs.String("truth-pattern", `rec-(\d+)-`, "regexp on record IDs; records whose first capture group is equal are the same entity")
	truthCol := fs.String("truth-column", "", "column holding the true entity (instead of --truth-pattern); it is left out of detection and training")
	threshold := fs.Float64("threshold", 0.95, "accept threshold on match probability")
	maxCluster := fs.Int("max-cluster", 100, "largest cluster clustering may build")
	density := fs.Float64("min-link-density", 0.3, "share of cross pairs that must be accepted edges to join two clusters of 2+")
	contra := fs.Bool("contradictions", false, "refuse a cluster join when as many of its record pairs contradict (namesakes' birth dates) as link")
	noHold := fs.Bool("no-hold", false, "turn off the household and namesake guards (accept pairs whose personal fields or birth dates disagree)")
	config := fs.String("config", "", "JSON config naming fields and comparisons (default: detect columns)")
	modelIn := fs.String("model", "", "score with this saved model (or \"segment\", the built-in one) instead of training")
	modelOut := fs.String("save-model", "", "write the trained model to this file")
	verbose := fs.Bool("v", false, "show detected columns, blocking rules, model weights and example errors")
	examples := fs.Int("examples", 5, "with -v: false positives and negatives to explain")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pairMemory := fs.Int64("pair-memory", match.DefaultPairMemory>>20, "MB of compared candidate pairs to hold in memory; the rest is spilled to a temporary file")
	tempDir := fs.String("temp-dir", "", "directory for spilled pairs (default: the system's temporary directory)")
	memLimit := memoryLimitFlag(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile taken at the run's peak to this file")
	// Accept flags after the file too ("eval FILE --link FILE2"): the flag
	// package stops at the first positional argument, so parse the rest again.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		return fmt.Errorf("usage: idgraph eval [--link FILE2] [--id-column COL] [--truth-pattern RE | --truth-column COL] [--threshold P] FILE")
	}
	setMemoryLimit(*memLimit)
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfiles(); perr != nil && err == nil {
			err = perr
		}
	}()
	opt := match.EvalOptions{IDColumn: *idCol, TruthPattern: *truth, TruthColumn: *truthCol}
	opt.Cluster = match.ClusterOptions{Threshold: *threshold, MaxSize: *maxCluster, MinLinkDensity: *density, Contradictions: *contra}
	opt.NoHold = *noHold
	opt.PairMemory, opt.TempDir = *pairMemory<<20, *tempDir
	opt.Progress = &match.Progress{}
	opt.Context = ctx
	if *verbose {
		opt.Examples = *examples
	}
	if *config != "" {
		if opt.Config, err = match.ReadConfig(*config); err != nil {
			return err
		}
	}
	if *modelIn != "" {
		if opt.Model, err = loadModel(*modelIn); err != nil {
			return err
		}
		if opt.Config == nil {
			c := opt.Model.Config
			opt.Config = &c
		}
	}
	stop := showProgress(opt.Progress)
	rep, err := match.EvaluateCSV(files[0], *link, *maxRecords, opt)
	stop()
	if err != nil {
		return err
	}
	if *modelOut != "" {
		if err := rep.Model.Save(*modelOut); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	match.FormatEval(os.Stdout, rep, *verbose)
	return nil
}

// loadModel reads a model saved by train, or returns the built-in model
// for Segment traits when name is "segment".
func loadModel(name string) (*match.Model, error) {
	if name == "segment" {
		return match.SegmentModel(), nil
	}
	return match.LoadModel(name)
}
