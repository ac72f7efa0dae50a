package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/erase"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/internal/envelope"
	"github.com/idgraph/idgraph/neo4j"
	"github.com/idgraph/idgraph/pebble"
)

// openErasure makes the erasure service over the store, re-applies the
// ledger and loads the suppression set.
func openErasure(ctx context.Context, store graph.Store, norm *graph.Normalizer, pepper []byte, ledger string, broker *graph.Broker, log *slog.Logger) (*erase.Service, error) {
	b, ok := store.(erase.Backend)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no erasures", store)
	}
	h := erase.NewHasher(pepper)
	svc := &erase.Service{Store: b.Erasure(), Graph: store, Norm: norm, Hasher: h, Set: erase.NewSet(h),
		Ledger: erase.OpenLedger(ledger), Broker: broker}
	if _, shared := store.(*neo4j.Store); shared {
		// Other servers may share the store: hear of their erasures, and
		// make ours wait until they must have heard (erase.Set.Follow).
		svc.Set.Follow(erase.DefaultMaxAge)
	}
	res, err := svc.Replay(ctx)
	if err != nil {
		return nil, err
	}
	if len(res.Requests) > 0 || res.Suppressions > 0 {
		log.Warn("erasure ledger re-applied: the store did not hold every erasure (restored from a backup?)",
			"requests", len(res.Requests), "profiles_erased", res.Profiles, "suppressions_restored", res.Suppressions)
	}
	log.Info("suppression set loaded", "entries", svc.Set.Len(), "ledger", ledger)
	return svc, nil
}

// eraseCmd is `idgraph erase SUBJECT`: the erase mutation, over GraphQL
// with an admin key, printing the receipt.
func eraseCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	srv, key := serverFlags(fs, "admin")
	mode := fs.String("mode", "ERASE_AND_SUPPRESS", "ERASE_AND_SUPPRESS, ERASE_ONLY, SUPPRESS_ONLY or UNSUPPRESS")
	receipt := fs.String("receipt", "", "print the receipt of this request ID instead of erasing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: idgraph erase [flags] SUBJECT   (type:value, e.g. email:ada@example.com, or a profile ID)")
		fmt.Fprintln(fs.Output(), "       idgraph erase -receipt REQUEST_ID")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	c := client.New(*srv, *key)
	const fields = `id mode subjectHash subjectHashes found deleted { kind count } segmentExits suppressionsAdded suppressionsRemoved requestedAt completedAt replayed`
	var out map[string]json.RawMessage
	switch {
	case *receipt != "" && len(pos) == 0:
		if err := c.GraphQL(ctx, `query($id: ID!) { erasureReceipt(id: $id) { `+fields+` } }`,
			map[string]any{"id": *receipt}, &out); err != nil {
			return fmt.Errorf("erase: %w", err)
		}
	case *receipt == "" && len(pos) == 1:
		m, err := erase.ParseMode(*mode)
		if err != nil {
			return fmt.Errorf("erase: %w", err)
		}
		if err := c.GraphQL(ctx, `mutation($s: String!, $m: ErasureMode) { erase(subject: $s, mode: $m) { `+fields+` } }`,
			map[string]any{"s": pos[0], "m": string(m)}, &out); err != nil {
			return fmt.Errorf("erase: %w", err)
		}
	default:
		fs.Usage()
		return fmt.Errorf("erase: give one SUBJECT, or -receipt REQUEST_ID")
	}
	for _, v := range out {
		if string(v) == "null" {
			return fmt.Errorf("erase: no erasure request %q", *receipt)
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return nil
}

// purgeCmd is `idgraph purge --store DIR|neo4j://…`. On the embedded
// store, with the server stopped, it rewrites the files so that erased
// records leave them. On Neo4j it rotates the keyring: every live data key
// is rewrapped under a new generation and the older ones are destroyed, so
// that the wrapped keys erasures left in Neo4j's files no longer open.
func purgeCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("purge", flag.ContinueOnError)
	dsn := fs.String("store", env("IDGRAPH_STORE", "./idgraph-data"), "the embedded store's directory (the server must be stopped), or neo4j://user:pass@host:7687 (also bolt://): its keyring is rotated, with no other process writing (stop the servers)")
	pepperFile := pepperFlag(fs)
	keyringFile := keyringFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if isNeo4j(*dsn) {
		return purgeNeo4j(ctx, *dsn, keyringPath(*dsn, *pepperFile, *keyringFile))
	}
	if err := pebble.Purge(ctx, *dsn); err != nil {
		return err
	}
	fmt.Printf("purged %s: compacted, checkpointed with a flushed WAL and a new MANIFEST, old files removed\n", *dsn)
	return nil
}

// purgeNeo4j rotates the KEK of the Neo4j store's keyring (neo4j.Store.RotateKeys).
// A process still writing under an old generation would wrap keys that
// the rotation then makes unreadable: the servers must be stopped.
func purgeNeo4j(ctx context.Context, dsn, file string) error {
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("purge: --keyring-file: %w (purge rotates the store's keyring; it never makes one)", err)
	}
	before, err := envelope.OpenKeyring(file)
	if err != nil {
		return fmt.Errorf("purge: --keyring-file %s: %w", file, err)
	}
	store, err := openStore(ctx, dsn, &encryption{File: file})
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	defer store.Close()
	rot, err := store.(*neo4j.Store).RotateKeys(ctx)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	fmt.Printf("purged %s: keyring %s rotated: generation %d made, generations %v destroyed; %d data keys rewrapped, %d already unreadable (wrapped under a destroyed generation); erased profiles' keys left in Neo4j's files no longer open\n",
		redact(dsn), file, rot.Generation, before.Generations(), rot.Rewrapped, rot.Unreadable)
	return nil
}

// verifyErasureCmd is `idgraph verify-erasure --store DIR REQUEST
// [VALUE…]`: it checks that the store holds the request's receipt and
// that none of the values (the erased person's, which only the operator
// knows: the store keeps hashes) appears as raw bytes in any of the
// store's files. Run it after purge, with the server stopped.
func verifyErasureCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-erasure", flag.ContinueOnError)
	dir := fs.String("store", env("IDGRAPH_STORE", "./idgraph-data"), "the embedded store's directory (the server must be stopped)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return fmt.Errorf("usage: idgraph verify-erasure --store DIR REQUEST [VALUE…]")
	}
	// The files are read before the store is opened: opening replays the
	// WAL into a new table, which would change what is on disk.
	found, err := pebble.ScanFiles(*dir, pos[1:])
	if err != nil {
		return err
	}
	s, err := pebble.Open(*dir)
	if err != nil {
		return err
	}
	rc, err := s.Erasure().Receipt(ctx, pos[0])
	s.Close()
	if err != nil {
		return fmt.Errorf("verify-erasure: %w", err)
	}
	report := map[string]any{"request": rc.ID, "mode": rc.Mode, "completedAt": rc.CompletedAt, "valuesChecked": len(pos) - 1,
		"valuesFound": len(found), "verified": len(found) == 0,
		"scope": "raw bytes of every file of the embedded store (tables, WAL, MANIFEST); not the file system's freed blocks, nor backups"}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		return err
	}
	if len(found) > 0 {
		return fmt.Errorf("verify-erasure: %d of %d values are still in the store's files: run idgraph purge", len(found), len(pos)-1)
	}
	return nil
}
