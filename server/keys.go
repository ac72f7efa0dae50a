package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/idgraph/idgraph/graph"
)

// LoadKeys returns the API keys: those given (flags or environment), or
// else the ones stored on first start, creating them then and logging them
// that one time.
func LoadKeys(ctx context.Context, store graph.Store, write, read, steward string, log *slog.Logger) (Keys, error) {
	var keys Keys
	for _, k := range []struct {
		name, prefix, given string
		dst                 *[]string
	}{
		{"write_key", "wk_", write, &keys.Write},
		{"read_key", "rk_", read, &keys.Read},
		{"steward_key", "sk_", steward, &keys.Steward},
	} {
		if k.given != "" {
			*k.dst = []string{k.given}
			continue
		}
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return Keys{}, fmt.Errorf("load keys: %w", err)
		}
		proposed := k.prefix + hex.EncodeToString(b)
		stored, err := store.InitSetting(ctx, k.name, proposed)
		if err != nil {
			return Keys{}, fmt.Errorf("load keys: %w", err)
		}
		if stored == proposed {
			log.Warn("created API key on first start; it is shown only this once", "key", k.name, "value", stored)
		}
		*k.dst = []string{stored}
	}
	if keys.Write[0] == keys.Read[0] || keys.Write[0] == keys.Steward[0] || keys.Read[0] == keys.Steward[0] {
		return Keys{}, fmt.Errorf("load keys: the write, read and steward keys must all differ")
	}
	return keys, nil
}
