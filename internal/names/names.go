// Package names compares people's names: normalisation, a nickname
// table and Jaro-Winkler similarity. Matching scores names with them, and
// stitching's name guard uses them to tell a household member's form from
// the signed-in person's own identify; a package of its own so that both
// can import it (match imports graph).
package names

import (
	"strings"
	"unicode"
)

// foldTable maps the accented Latin letters met in names to their base
// letter, so "José" and "Jose" agree exactly. A small table rather than
// golang.org/x/text keeps the package free of dependencies; letters it
// does not know (Cyrillic, CJK, …) are kept as they are.
var foldTable = map[rune]rune{
	'à': 'a', 'á': 'a', 'â': 'a', 'ã': 'a', 'ä': 'a', 'å': 'a', 'ā': 'a', 'ă': 'a', 'ą': 'a',
	'ç': 'c', 'ć': 'c', 'č': 'c', 'ď': 'd', 'đ': 'd',
	'è': 'e', 'é': 'e', 'ê': 'e', 'ë': 'e', 'ē': 'e', 'ė': 'e', 'ę': 'e', 'ě': 'e',
	'ğ': 'g', 'ì': 'i', 'í': 'i', 'î': 'i', 'ï': 'i', 'ī': 'i', 'į': 'i', 'ı': 'i',
	'ł': 'l', 'ľ': 'l', 'ñ': 'n', 'ń': 'n', 'ň': 'n',
	'ò': 'o', 'ó': 'o', 'ô': 'o', 'õ': 'o', 'ö': 'o', 'ø': 'o', 'ō': 'o', 'ő': 'o',
	'ŕ': 'r', 'ř': 'r', 'ś': 's', 'š': 's', 'ş': 's', 'ș': 's', 'ß': 's',
	'ť': 't', 'ţ': 't', 'ț': 't', 'ù': 'u', 'ú': 'u', 'û': 'u', 'ü': 'u', 'ū': 'u', 'ů': 'u', 'ű': 'u', 'ų': 'u',
	'ý': 'y', 'ÿ': 'y', 'ź': 'z', 'ż': 'z', 'ž': 'z',
}

// Normalize lower-cases, folds common accents, turns punctuation into
// spaces and collapses runs of spaces. Letters and digits of any script
// survive, so non-Latin names compare on their own characters.
func Normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		r = unicode.ToLower(r)
		if f, ok := foldTable[r]; ok {
			r = f
		}
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		case unicode.Is(unicode.Mn, r):
			// combining marks (decomposed accents) carry no identity
		default:
			space = true
		}
	}
	return b.String()
}

// JaroWinkler is the Jaro similarity with Winkler's common-prefix boost
// (prefix up to 4, scale 0.1). It works on runes so non-Latin names are
// compared by characters, not bytes.
func JaroWinkler(a, b []rune) float64 {
	j := jaro(a, b)
	if j <= 0.7 {
		return j
	}
	l := 0
	for l < len(a) && l < len(b) && l < 4 && a[l] == b[l] {
		l++
	}
	return j + float64(l)*0.1*(1-j)
}

func jaro(a, b []rune) float64 {
	la, lb := len(a), len(b)
	if la == 0 && lb == 0 {
		return 1
	}
	if la == 0 || lb == 0 {
		return 0
	}
	md := max(la, lb)/2 - 1
	if md < 0 {
		md = 0
	}
	// Stack buffers avoid allocations for the short strings we compare.
	var abuf, bbuf [64]bool
	am, bm := abuf[:0], bbuf[:0]
	if la <= 64 && lb <= 64 {
		am, bm = abuf[:la], bbuf[:lb]
	} else {
		am, bm = make([]bool, la), make([]bool, lb)
	}
	m := 0
	for i := 0; i < la; i++ {
		lo, hi := max(0, i-md), min(lb-1, i+md)
		for k := lo; k <= hi; k++ {
			if !bm[k] && a[i] == b[k] {
				am[i], bm[k] = true, true
				m++
				break
			}
		}
	}
	if m == 0 {
		return 0
	}
	t, k := 0, 0
	for i := 0; i < la; i++ {
		if !am[i] {
			continue
		}
		for !bm[k] {
			k++
		}
		if a[i] != b[k] {
			t++
		}
		k++
	}
	fm := float64(m)
	return (fm/float64(la) + fm/float64(lb) + (fm-float64(t)/2)/fm) / 3
}

// Nicknames maps common English diminutives to a group name, so "bob"
// and "robert" (or "bob" and "rob") reach the nickname level. The list is
// deliberately short: a wrong pairing costs precision everywhere.
var Nicknames = map[string]string{
	"abby": "abigail", "al": "albert", "alex": "alexander", "alf": "alfred", "andy": "andrew", "drew": "andrew",
	"angie": "angela", "annie": "ann", "anne": "ann", "anna": "ann", "barb": "barbara", "becky": "rebecca", "becca": "rebecca",
	"ben": "benjamin", "benny": "benjamin", "beth": "elizabeth", "betty": "elizabeth", "liz": "elizabeth", "lizzie": "elizabeth",
	"eliza": "elizabeth", "bill": "william", "billy": "william", "will": "william", "willy": "william", "liam": "william",
	"bob": "robert", "bobby": "robert", "rob": "robert", "robbie": "robert", "bert": "albert", "cathy": "catherine",
	"kathy": "katherine", "kate": "katherine", "katie": "katherine", "kath": "katherine", "kat": "katherine", "kathryn": "katherine",
	"catherine": "katherine", "charlie": "charles", "chuck": "charles", "chris": "christopher", "kit": "christopher",
	"chrissy": "christine", "tina": "christine", "dan": "daniel", "danny": "daniel", "dave": "david", "davy": "david",
	"deb": "deborah", "debbie": "deborah", "dick": "richard", "rick": "richard", "ricky": "richard", "rich": "richard",
	"don": "donald", "donny": "donald", "doug": "douglas", "ed": "edward", "eddie": "edward", "ted": "edward", "ned": "edward",
	"frank": "francis", "fran": "frances", "fred": "frederick", "freddie": "frederick", "gabe": "gabriel", "gerry": "gerald",
	"greg": "gregory", "harry": "henry", "hank": "henry", "jack": "john", "johnny": "john", "jon": "john", "jim": "james",
	"jimmy": "james", "jamie": "james", "jen": "jennifer", "jenny": "jennifer", "jeff": "jeffrey", "jerry": "gerald",
	"jess": "jessica", "jessie": "jessica", "joe": "joseph", "joey": "joseph", "josh": "joshua", "jake": "jacob",
	"judy": "judith", "ken": "kenneth", "kenny": "kenneth", "larry": "lawrence", "len": "leonard", "lenny": "leonard",
	"leo": "leonard", "lou": "louis", "maggie": "margaret", "meg": "margaret", "peggy": "margaret", "marge": "margaret",
	"mandy": "amanda", "matt": "matthew", "matty": "matthew", "mike": "michael", "mick": "michael", "mickey": "michael",
	"mitch": "mitchell", "molly": "mary", "polly": "mary", "nate": "nathan", "nat": "nathan", "nick": "nicholas",
	"nicky": "nicholas", "pam": "pamela", "pat": "patrick", "patty": "patricia", "trish": "patricia", "pete": "peter",
	"phil": "philip", "ray": "raymond", "ron": "ronald", "ronnie": "ronald", "sam": "samuel", "sammy": "samuel",
	"sandy": "sandra", "steve": "stephen", "stevie": "stephen", "steven": "stephen", "sue": "susan", "susie": "susan",
	"suzy": "susan", "tim": "timothy", "timmy": "timothy", "tom": "thomas", "tommy": "thomas", "tony": "anthony",
	"val": "valerie", "vic": "victor", "vicky": "victoria", "tori": "victoria", "walt": "walter", "wally": "walter",
	"zach": "zachary", "zack": "zachary", "theo": "theodore", "terry": "terence", "stu": "stuart", "sid": "sidney",
	"geoff": "geoffrey", "jo": "joanne", "josie": "josephine", "nell": "helen", "nellie": "helen", "sally": "sarah",
	"sadie": "sarah", "gus": "augustus", "bart": "bartholomew", "manny": "emmanuel", "izzy": "isabel", "bella": "isabel",
	"isabelle": "isabel", "izzie": "isabel", "em": "emily", "emmy": "emily", "dot": "dorothy", "dotty": "dorothy",
}

// NicknameGroup returns the name's group, or "" when the name is in no group.
func NicknameGroup(first string) string {
	if g, ok := Nicknames[first]; ok {
		return g
	}
	if nicknameTargets[first] {
		return first
	}
	return ""
}

var nicknameTargets = func() map[string]bool {
	t := make(map[string]bool, len(Nicknames))
	for _, g := range Nicknames {
		t[g] = true
	}
	return t
}()

// Disagree reports whether two first names clearly belong to two people:
// both present and, normalised, not equal, not nicknames of one name (Bob,
// Robert), neither an initial or prefix of the other (J., Sam and
// Samantha), and less alike than threshold by Jaro-Winkler (Jon and John,
// a typo, are alike). Only the first word of each counts ("Mary Ann").
func Disagree(a, b string, threshold float64) bool {
	a, b = firstWord(Normalize(a)), firstWord(Normalize(b))
	if a == "" || b == "" || a == b {
		return false
	}
	if g := NicknameGroup(a); g != "" && g == NicknameGroup(b) {
		return false
	}
	if strings.HasPrefix(a, b) || strings.HasPrefix(b, a) {
		return false
	}
	return JaroWinkler([]rune(a), []rune(b)) < threshold
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}
