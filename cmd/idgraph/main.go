// Command idgraph runs the identity-graph service and its client tools.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: idgraph <command> [flags]

commands:
  init              prepare a store: the key pepper file (on Neo4j the keyring too) and the first admin key, printed once
  serve             run the service (embedded store in ./idgraph-data by default)
  healthcheck       exit 0 if the server on this host answers /readyz (the container's HEALTHCHECK)
  keys              create, list, rotate and revoke API keys (admin key)
  audit verify      check the audit chain's every link; exits 1 naming the first broken one
  import            send a CSV or JSONL file of records to a server
  export profiles   print every profile as one JSON line
  export-subject    print everything about one person (type:value or profile:ID) as JSON lines (admin key)
  train             train a matching model on a CSV (unsupervised) for serve --model
  erase             erase a person (any identifier type:value, or a profile ID) and suppress their return; -receipt ID
  purge             rewrite the embedded store (server stopped) so erased records leave its files;
                    on Neo4j rotate the keyring (no other process writing) so erased payloads no longer open
  verify-erasure    REQUEST [VALUE…]: the receipt is stored and no value is in the embedded store's files
  segments          apply DIR, diff DIR: segment definitions kept as files; explain PROFILE SEGMENT
  destinations      list, health, redeliver, replay, resync, jobs: webhook destinations on a running server (admin key)
  retention         show, sweep: the retention policy and an immediate sweep on a running server (admin key)
  suppressions      add, remove, list, counts: suppression lists on a running server (admin key)
  match             re-score every profile with the server's model (resumable)
  synth             write a noisy labelled CSV (FEBRL-like, households, common names) for eval
  synth traffic     write a stream of Segment calls and CRM records for N people, with the truth kept aside
  send              replay a synth traffic directory through /v1/batch and import its CRM records
  score             score the server's profiles against a synth traffic directory's truth
  eval              measure probabilistic matching on a labelled CSV: blocking recall, precision, recall, F1
  loadgen           drive /v1/batch with a realistic message mix and report throughput
  bench-lookup      seed profiles and drive GraphQL lookups; report requests/s and latency
  bench-ceiling     serve the benchmark ceilings: /v1/batch that only decodes and fsync-appends,
                    /graphql that only decodes the request and answers a fixed profile

Run "idgraph <command> -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "idgraph:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "init":
		return runInit(ctx, args[1:])
	case "serve":
		return serve(ctx, args[1:])
	case "healthcheck":
		return runHealthcheck(ctx, args[1:])
	case "keys":
		return runKeys(ctx, args[1:])
	case "export-subject":
		return runExportSubject(ctx, args[1:])
	case "audit":
		return runAudit(ctx, args[1:])
	case "erase":
		return eraseCmd(ctx, args[1:])
	case "purge":
		return purgeCmd(ctx, args[1:])
	case "verify-erasure":
		return verifyErasureCmd(ctx, args[1:])
	case "import":
		return runImport(ctx, args[1:])
	case "export":
		if len(args) < 2 || args[1] != "profiles" {
			return fmt.Errorf("usage: idgraph export profiles --server URL --key READKEY")
		}
		return runExport(ctx, args[2:])
	case "loadgen":
		return runLoadgen(ctx, args[1:])
	case "eval":
		return runEval(ctx, args[1:])
	case "synth":
		return runSynth(ctx, args[1:])
	case "send":
		return runSend(ctx, args[1:])
	case "score":
		return runScore(ctx, args[1:])
	case "train":
		return runTrain(ctx, args[1:])
	case "match":
		return runMatch(ctx, args[1:])
	case "segments":
		return runSegments(ctx, args[1:])
	case "destinations":
		return runDestinations(ctx, args[1:])
	case "retention":
		return runRetention(ctx, args[1:])
	case "suppressions":
		return runSuppressions(ctx, args[1:])
	case "bench-lookup":
		return runBenchLookup(ctx, args[1:])
	case "bench-ceiling":
		return runCeiling(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// env returns the environment variable or a default, for flag defaults.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
