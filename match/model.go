package match

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// Level is one comparison level's parameters: m is the chance a true
// match falls in it, u the chance a random (non-matching) pair does.
type Level struct {
	Name string  `json:"name"`
	M    float64 `json:"m"`
	U    float64 `json:"u"`
}

// Weight is the level's match weight, log2(m/u), in bits.
func (l Level) Weight() float64 { return math.Log2(l.M / l.U) }

// ComparisonModel holds the levels of one field, without "null" (which
// always weighs 0).
type ComparisonModel struct {
	Field  string  `json:"field"`
	Method string  `json:"method"`
	TF     bool    `json:"tf,omitempty"`
	Levels []Level `json:"levels"`
}

// Model is a trained Fellegi-Sunter model. Version is a hash of
// everything else, so any change of parameters gives a new version and a
// scored edge can name exactly the model that scored it.
type Model struct {
	Version string `json:"version"`
	Trained string `json:"trained"` // "unsupervised" or "labelled"
	// Data names what the model was trained on when that is part of its
	// identity (TrainAuto: the sources and a digest of their records).
	Data        string            `json:"data,omitempty"`
	Prior       float64           `json:"prior"` // λ: probability that two random records match
	Config      Config            `json:"config"`
	Comparisons []ComparisonModel `json:"comparisons"`
}

// Seal computes and sets the version.
func (m *Model) Seal() {
	m.Version = ""
	b, _ := json.Marshal(m)
	sum := sha256.Sum256(b)
	m.Version = "fs-" + hex.EncodeToString(sum[:6])
}

// Save writes the model as indented JSON.
func (m *Model) Save(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadModel reads a model saved by Save and checks it is intact: the
// version must match the parameters, so a hand-edited model cannot pass
// itself off as the one that scored earlier edges.
func LoadModel(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeModel(f)
}

// DecodeModel parses and checks a model.
func DecodeModel(r io.Reader) (*Model, error) {
	var m Model
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("match: model: %w", err)
	}
	want := m.Version
	m.Seal()
	if want != m.Version {
		return nil, fmt.Errorf("match: model version %q does not match its parameters (%s)", want, m.Version)
	}
	if err := m.Config.Validate(); err != nil {
		return nil, err
	}
	if len(m.Comparisons) != len(m.Config.Fields) {
		return nil, fmt.Errorf("match: model has %d comparisons for %d fields", len(m.Comparisons), len(m.Config.Fields))
	}
	if m.Prior <= 0 || m.Prior >= 1 {
		return nil, fmt.Errorf("match: model prior %v out of (0,1)", m.Prior)
	}
	for _, c := range m.Comparisons {
		for _, l := range c.Levels {
			if l.M <= 0 || l.U <= 0 || l.M > 1 || l.U > 1 {
				return nil, fmt.Errorf("match: field %s level %s: m and u must be in (0,1]", c.Field, l.Name)
			}
		}
	}
	return &m, nil
}
