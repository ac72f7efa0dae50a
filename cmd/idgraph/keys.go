package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/idgraph/idgraph/audit"
	"github.com/idgraph/idgraph/auth"
	"github.com/idgraph/idgraph/client"
	"github.com/idgraph/idgraph/graph"
	"github.com/idgraph/idgraph/server"
)

// pepperFlag adds --pepper-file: where the HMAC pepper of API keys lives,
// outside the data store (IDGRAPH_PEPPER, hex, takes precedence).
func pepperFlag(fs *flag.FlagSet) *string {
	return fs.String("pepper-file", env("IDGRAPH_PEPPER_FILE", ""),
		"file holding the pepper that keys API key hashes, created 0600 if missing (default: beside the embedded store's directory, <dir>.pepper, or ./idgraph.pepper for Neo4j); IDGRAPH_PEPPER (hex) overrides it")
}

// loadPepper returns the pepper: IDGRAPH_PEPPER, else the file (made on
// first use). It lives beside the data directory, never in it, so that a
// copy of the store alone cannot check a guessed secret.
func loadPepper(dsn, file string) ([]byte, error) {
	if v, ok := os.LookupEnv("IDGRAPH_PEPPER"); ok {
		return auth.ParsePepper(v)
	}
	return auth.LoadPepper(pepperPath(dsn, file))
}

// pepperPath is the pepper file's path: the flag's, else beside the
// embedded store's directory, else ./idgraph.pepper for Neo4j.
func pepperPath(dsn, file string) string {
	if file != "" {
		return file
	}
	if !isNeo4j(dsn) {
		return filepath.Clean(dsn) + ".pepper"
	}
	return "idgraph.pepper"
}

// ledgerPath is the erasure ledger's path: beside the pepper file, never
// inside the data store, so that restoring the store leaves it in place.
func ledgerPath(dsn, pepperFile string) string {
	return strings.TrimSuffix(pepperPath(dsn, pepperFile), ".pepper") + ".erasures.jsonl"
}

// keyringPath is the KEK keyring's path (Neo4j payload encryption): the
// flag's, else beside the pepper file, outside the data store, like the
// ledger: a copy of Neo4j's files alone must not open what they hold.
func keyringPath(dsn, pepperFile, file string) string {
	if file != "" {
		return file
	}
	return strings.TrimSuffix(pepperPath(dsn, pepperFile), ".pepper") + ".keyring"
}

// keyringFlag adds --keyring-file.
func keyringFlag(fs *flag.FlagSet) *string {
	return fs.String("keyring-file", env("IDGRAPH_KEYRING_FILE", ""),
		"Neo4j only: the file holding the key-encryption keys that wrap each profile's data keys, a secret like the pepper, created 0600 if missing (default: beside the pepper file, <pepper file without .pepper>.keyring); the embedded store ignores it: its erasure proof is purge's rewrite of its files (docs/security.md)")
}

// encryption is how a command that reads or writes payloads opens a
// Neo4j store: under the keyring in File, or plain when File is "".
type encryption struct{ File string }

// encryptionFlags adds --keyring-file and --encrypt, the Neo4j payload
// encryption settings, and returns how to open the store.
func encryptionFlags(fs *flag.FlagSet) func(dsn, pepperFile string) *encryption {
	file := keyringFlag(fs)
	encrypt := fs.Bool("encrypt", envBool("IDGRAPH_ENCRYPT", true),
		"Neo4j only: store profile traits and event properties, traits and context encrypted under per-profile keys (--keyring-file), so that an erasure followed by idgraph purge leaves them unreadable in Neo4j's files; false writes them plain, and refuses a store that holds encrypted payloads")
	return func(dsn, pepperFile string) *encryption {
		if !*encrypt {
			return &encryption{}
		}
		return &encryption{File: keyringPath(dsn, pepperFile, *file)}
	}
}

// isNeo4j tells a neo4j:// or bolt:// DSN from the embedded store's
// directory.
func isNeo4j(dsn string) bool {
	u, err := url.Parse(dsn)
	return err == nil && (strings.HasPrefix(u.Scheme, "neo4j") || strings.HasPrefix(u.Scheme, "bolt"))
}

// openKeyring returns the keyring over the store's key records and the
// legacy keys.
func openKeyring(store graph.Store, pepper []byte, legacy server.Keys) (*auth.Keyring, error) {
	b, ok := store.(auth.Backend)
	if !ok {
		return nil, fmt.Errorf("the store %T keeps no API keys", store)
	}
	return auth.NewKeyring(auth.KeyringOptions{Store: b.APIKeys(), Pepper: pepper, Legacy: auth.Legacy(legacy)})
}

// printFirstAdminKey shows a new admin key on w (stdout), never the log.
func printFirstAdminKey(w io.Writer, k auth.Key) {
	fmt.Fprintf(w, "idgraph: the first admin key (shown only this once; store it now):\n\n  %s\n\n"+
		"Create the other keys with it, e.g.\n  idgraph keys create --role write --key %s\n", k.String(), k.String())
}

// runInit prepares a store: the pepper file (on Neo4j the keyring of
// payload encryption too) and the first admin key, printed once.
func runInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	dsn := fs.String("store", env("IDGRAPH_STORE", "./idgraph-data"), "a directory for the embedded store, or neo4j://user:pass@host:7687 (also bolt://)")
	pepperFile := pepperFlag(fs)
	keyringFile := encryptionFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pepper, err := loadPepper(*dsn, *pepperFile)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	store, err := openStore(ctx, *dsn, keyringFile(*dsn, *pepperFile))
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	defer store.Close()
	kr, err := openKeyring(store, pepper, server.Keys{})
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	auditLog, err := audit.Open(store, pepper)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	key, ok, err := server.FirstAdminKey(ctx, store, kr)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if !ok {
		fmt.Println("idgraph: this store has had its first admin key already; make more with idgraph keys create --role admin")
		return nil
	}
	printFirstAdminKey(os.Stdout, key)
	if err := recordFirstAdminKey(ctx, auditLog, key, "init"); err != nil {
		fmt.Fprintf(os.Stderr, "idgraph: warning: %v\n", err)
	}
	return nil
}

// recordFirstAdminKey adds the first admin key to the audit chain, as an
// action of the system (no key made it), naming its public id and the
// command that made it (init or serve), never its secret. It runs after
// the key is shown: a failure to record must not lose the only admin key.
func recordFirstAdminKey(ctx context.Context, l *audit.Log, key auth.Key, by string) error {
	target, err := json.Marshal(map[string]string{"id": key.ID, "role": string(key.Role), "by": by})
	if err != nil {
		return fmt.Errorf("first admin key: audit entry: %w", err)
	}
	if _, err := l.Append(ctx, audit.Record{Action: "firstAdminKey", Target: string(target), Request: audit.Request{Role: "system"}}); err != nil {
		return fmt.Errorf("first admin key: audit entry: %w", err)
	}
	return nil
}

const keysUsage = `usage: idgraph keys <create|list|rotate|revoke> --server URL --key ADMINKEY …
  keys create --role ROLE [--name TEXT] [--expires 720h]   make a key (write, mint, read, support, steward, admin); prints it once
  keys list                                               every key: id, role, state, dates (never a secret)
  keys rotate [--grace 24h] ID                            a new key in place of ID, which works for the grace period
  keys revoke ID                                          end ID at once`

// runKeys manages keys through the server's GraphQL API with an admin key
// (IDGRAPH_ADMIN_KEY).
func runKeys(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", keysUsage)
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	srv, key := serverFlags(fs, "admin")
	role := fs.String("role", "", "create: the new key's role")
	name := fs.String("name", "", "create: a label for the key")
	expires := fs.Duration("expires", 0, "create: end the key after this long (0: never)")
	grace := fs.Duration("grace", auth.DefaultGrace, "rotate: how long the old key keeps working")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	c := client.New(*srv, *key)
	switch args[0] {
	case "create":
		if *role == "" || len(pos) != 0 {
			return fmt.Errorf("usage: idgraph keys create --role ROLE [--name TEXT] [--expires DURATION]")
		}
		k, rec, err := c.CreateKey(ctx, *role, *name, *expires)
		if err != nil {
			return err
		}
		fmt.Printf("created %s key %s; the key is shown only this once:\n\n  %s\n", rec.Role, rec.ID, k)
	case "list":
		keys, err := c.ListKeys(ctx)
		if err != nil {
			return err
		}
		printKeys(os.Stdout, keys)
	case "rotate":
		if len(pos) != 1 {
			return fmt.Errorf("usage: idgraph keys rotate [--grace 24h] ID")
		}
		k, rec, err := c.RotateKey(ctx, pos[0], *grace)
		if err != nil {
			return err
		}
		fmt.Printf("rotated %s: the new %s key %s is shown only this once; the old one works until %s:\n\n  %s\n",
			pos[0], rec.Role, rec.ID, time.Now().Add(*grace).UTC().Format(time.RFC3339), k)
	case "revoke":
		if len(pos) != 1 {
			return fmt.Errorf("usage: idgraph keys revoke ID")
		}
		rec, err := c.RevokeKey(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Printf("revoked %s key %s at %s\n", rec.Role, rec.ID, rec.Revoked.Format(time.RFC3339))
	default:
		return fmt.Errorf("unknown keys command %q\n%s", args[0], keysUsage)
	}
	return nil
}

// parseInterleaved parses flags given before and after the positional
// arguments (keys revoke ID --key …), which flag.Parse alone stops at.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printKeys(w io.Writer, keys []client.APIKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tSTATE\tCREATED\tEXPIRES\tREVOKED\tNAME")
	day := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, k.State, k.Created.UTC().Format(time.RFC3339), day(k.Expires), day(k.Revoked), k.Name)
	}
	tw.Flush()
}
