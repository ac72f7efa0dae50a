package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/idgraph/idgraph/audit"
)

// runAudit runs `idgraph audit verify`: it reads the store's audit chain
// and checks every link, failing (exit 1) at the first broken one.
func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("usage: idgraph audit verify [--store DIR|neo4j://…] [--pepper-file FILE] [--json]")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	dsn := fs.String("store", env("IDGRAPH_STORE", "./idgraph-data"), "a directory for the embedded store, or neo4j://user:pass@host:7687 (also bolt://)")
	pepperFile := pepperFlag(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	pepper, err := loadPepper(*dsn, *pepperFile)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	// The audit chain is not encrypted: no keyring needed, and none made.
	store, err := openStore(ctx, *dsn, nil)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer store.Close()
	l, err := audit.Open(store, pepper)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	rep, err := audit.Verify(ctx, l.Store(), pepper)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		fmt.Printf("audit chain: %d entries verified, %d redacted", rep.Entries, rep.Redacted)
		if rep.Head != "" {
			fmt.Printf(", head %s", rep.Head)
		}
		fmt.Println()
	}
	if rep.Broken != nil {
		return fmt.Errorf("audit verify: %w", rep.Broken)
	}
	return nil
}
