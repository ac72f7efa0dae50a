package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/idgraph/idgraph/match"
)

// runTrain trains a matching model on a CSV, unsupervised, and saves it
// for serve --model.
func runTrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	out := fs.String("out", "model.json", "where to write the model")
	config := fs.String("config", "", "JSON config naming fields and comparisons (default: detect columns)")
	idCol := fs.String("id-column", "", "record-ID column (default: detected)")
	maxRecords := fs.Int("max-records", match.DefaultMaxRecords, "refuse a file with more records than this (a run needs about 1 GB per million)")
	memLimit := memoryLimitFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	setMemoryLimit(*memLimit)
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: idgraph train [--out model.json] [--config FILE] [--id-column COL] FILE.csv")
	}
	var cfg *match.Config
	if *config != "" {
		var err error
		if cfg, err = match.ReadConfig(*config); err != nil {
			return err
		}
	}
	progress := &match.Progress{}
	stop := showProgress(progress)
	loaded, err := match.LoadCSV([]string{fs.Arg(0)}, match.CSVOptions{Config: cfg, IDColumn: *idCol, MaxRecords: *maxRecords, Progress: progress})
	if err != nil {
		stop()
		return err
	}
	ds := loaded.Dataset
	res, err := match.Run(ds, match.Options{TrainOnly: true, Progress: progress, Context: ctx})
	stop()
	if err != nil {
		return err
	}
	if err := res.Model.Save(*out); err != nil {
		return err
	}
	fmt.Printf("trained %s on %d records (%d candidate pairs); prior %.4g; wrote %s\n",
		res.Model.Version, ds.Len(), res.Blocking.CandidatePairs, res.Model.Prior, *out)
	for _, c := range res.Model.Comparisons {
		fmt.Printf("  %-16s %s\n", c.Field, c.Method)
	}
	return nil
}
