package match

import (
	"strings"

	"github.com/idgraph/idgraph/internal/names"
)

// normalizeEmail keeps the characters that matter in an address.
func normalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// digitsOf keeps only ASCII digits.
func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func stripSpaces(s string) string {
	if !strings.Contains(s, " ") {
		return s
	}
	return strings.ReplaceAll(s, " ", "")
}

// damerauLevenshtein is the optimal-string-alignment distance (insert,
// delete, substitute, transpose adjacent) on runes. Comparators only ask
// "within 1 or 2 edits?", so it fills only the diagonal band of width
// limit and returns limit+1 as soon as the distance must exceed it.
func damerauLevenshtein(a, b []rune, limit int) int {
	la, lb := len(a), len(b)
	if d := la - lb; d > limit || -d > limit {
		return limit + 1
	}
	if la == 0 || lb == 0 {
		return max(la, lb)
	}
	inf := limit + 1
	var buf [3 * 65]int
	var prev2, prev, cur []int
	if lb < 65 {
		prev2, prev, cur = buf[0:lb+1], buf[65:65+lb+1], buf[130:130+lb+1]
	} else {
		prev2, prev, cur = make([]int, lb+1), make([]int, lb+1), make([]int, lb+1)
	}
	for j := 0; j <= lb; j++ {
		prev[j] = min(j, inf)
		prev2[j] = inf
	}
	for i := 1; i <= la; i++ {
		lo, hi := max(1, i-limit), min(lb, i+limit)
		for j := range cur {
			cur[j] = inf
		}
		if i <= limit {
			cur[0] = i
		}
		rowMin := inf
		for j := lo; j <= hi; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			v = min(v, inf)
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return inf
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[lb]
}

// jwAtLeast reports whether names.JaroWinkler(a, b) >= t. Most pairs compared
// are unrelated, so it first bounds the similarity by the characters the
// strings share at all (ignoring the match window) and skips the full
// computation when even that bound falls short.
func jwAtLeast(a, b []rune, t float64) bool {
	la, lb := len(a), len(b)
	if la == 0 || lb == 0 {
		return false
	}
	var ca [128]int16
	ascii := true
	for _, r := range a {
		if r >= 128 {
			ascii = false
			break
		}
		ca[r]++
	}
	if ascii {
		common := 0
		for _, r := range b {
			if r < 128 && ca[r] > 0 {
				ca[r]--
				common++
			}
		}
		cm := float64(common)
		j := (cm/float64(la) + cm/float64(lb) + 1) / 3
		if common == 0 {
			j = 0
		}
		l := 0
		for l < la && l < lb && l < 4 && a[l] == b[l] {
			l++
		}
		if j+float64(l)*0.1*(1-j) < t {
			return false
		}
	}
	return names.JaroWinkler(a, b) >= t
}

// tokenSet is the Jaccard similarity of the two strings' word sets, which
// ignores word order ("smith john" = "john smith").
func tokenSet(a, b []string) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	inter := 0
	for _, x := range a {
		for _, y := range b {
			if x == y {
				inter++
				break
			}
		}
	}
	union := len(a) + len(b) - inter
	return float64(inter) / float64(union)
}

// soundex is the classic American Soundex code. Names with no Latin
// letter fall back to their first runes so that non-Latin names still
// get a usable blocking key.
func soundex(s string) string {
	codes := [26]byte{0, '1', '2', '3', 0, '1', '2', 0, 0, '2', '2', '4', '5', '5', 0, '1', '2', '6', '2', '3', 0, '1', 0, '2', 0, '2'}
	out := make([]byte, 0, 4)
	var last byte
	for i := 0; i < len(s) && len(out) < 4; i++ {
		c := s[i]
		if c < 'a' || c > 'z' {
			continue
		}
		code := codes[c-'a']
		if len(out) == 0 {
			out = append(out, c-'a'+'A')
			last = code
			continue
		}
		if code != 0 && code != last {
			out = append(out, code)
		}
		if c != 'h' && c != 'w' { // h and w do not separate equal codes
			last = code
		}
	}
	if len(out) == 0 {
		return prefixRunes(s, 3)
	}
	for len(out) < 4 {
		out = append(out, '0')
	}
	return string(out)
}

var phoneticGroups = strings.NewReplacer("sch", "sk", "tch", "c", "ph", "f", "gh", "", "ck", "k", "dg", "j",
	"sh", "x", "ch", "x", "th", "0", "qu", "kw", "ce", "se", "ci", "si", "cy", "sy")

// phonetic is a small metaphone-like key: it maps letter groups that
// sound alike to one symbol and drops vowels after the first letter. It
// catches errors Soundex misses at the start of a name (ph/f, c/k, kn/n).
func phonetic(s string) string {
	s = stripSpaces(s)
	if s == "" {
		return ""
	}
	for _, p := range [][2]string{{"kn", "n"}, {"gn", "n"}, {"pn", "n"}, {"wr", "r"}, {"wh", "w"}, {"x", "s"}, {"ps", "s"}} {
		if strings.HasPrefix(s, p[0]) {
			s = p[1] + s[len(p[0]):]
			break
		}
	}
	s = phoneticGroups.Replace(s)
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case 'a', 'e', 'i', 'o', 'u', 'y', 'h', 'w':
			if i > 0 {
				continue
			}
			c = 'a'
		case 'c', 'q', 'g':
			c = 'k'
		case 'z':
			c = 's'
		case 'v':
			c = 'f'
		case 'd':
			c = 't'
		case 'b':
			c = 'p'
		case 'm':
			c = 'n'
		}
		if len(out) > 0 && out[len(out)-1] == c {
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return prefixRunes(s, 3)
	}
	return string(out)
}

func prefixRunes(s string, n int) string {
	i := 0
	for p := range s {
		if i == n {
			return s[:p]
		}
		i++
	}
	return s
}
