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
