package match

import (
	"strings"

	"github.com/idgraph/idgraph/internal/names"
)

// Person names as catalogues and CRMs write them: "sir thomas clifford,
// 1st baron clifford of chudleigh", "clifford, thomas", "t. clifford jr".
// These helpers find the given name and surname inside such a string and
// tell name words from the titles, suffixes and peerages around them.

// nameTitles are words before or around a name that are not the name.
var nameTitles = setOf(`sir lord lady dame rev reverend revd dr mr mrs ms miss mx prof professor capt captain
	col colonel gen general adm admiral maj major lt lieutenant sgt sergeant hon honourable honorable rt
	right st saint fr father brother sister king queen prince princess count countess baron baroness
	earl duke duchess viscount viscountess marquess marquis marchioness baronet bt esq emperor empress
	bishop archbishop cardinal pope`)

// givenTitles are the titles typed into a given-name column in a
// name's place; unlike nameTitles, none is also a given name ("earl").
var givenTitles = setOf(`sir lord lady dame rev reverend revd dr mr mrs ms miss mx prof professor capt captain
	col colonel gen general adm admiral maj lt lieutenant sgt sergeant hon honourable honorable rt`)

// onlyTitles reports whether a given name holds titles and nothing else.
func onlyTitles(s string) bool {
	words := strings.Fields(names.Normalize(s))
	for _, w := range words {
		if !givenTitles[w] {
			return false
		}
	}
	return len(words) > 0
}

// nameSuffixes follow a name: generations and letters.
var nameSuffixes = setOf(`jr jnr junior sr snr senior ii iii iv v vi esq phd md qc kc obe mbe cbe kbe frs`)

// peerageWords start the part after a comma that is a title, not a
// given name ("…, 1st baron x", "…, duke of y").
var peerageWords = setOf(`baron baroness earl duke duchess viscount viscountess marquess marquis marchioness
	baronet count countess lord lady of`)

func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// ordinalWord reports "1st", "2nd", "3rd", "4th", ….
func ordinalWord(w string) bool {
	if len(w) < 3 || !isDigits(w[:len(w)-2]) {
		return false
	}
	switch w[len(w)-2:] {
	case "st", "nd", "rd", "th":
		return true
	}
	return false
}

func nonNameWord(w string) bool {
	return nameTitles[w] || nameSuffixes[w] || ordinalWord(w)
}

// personWords returns the name words of a full name in their written
// order: lower case, titles, suffixes and a trailing peerage removed, a
// "surname, given" form turned round.
func personWords(s string) []string {
	s = strings.ToLower(s)
	head, tail, comma := strings.Cut(s, ",")
	words := strings.Fields(names.Normalize(head))
	if comma {
		after := strings.Fields(names.Normalize(tail))
		switch {
		case len(after) == 0:
		case ordinalWord(after[0]) || peerageWords[after[0]] || nameSuffixes[after[0]]:
			// "…, 1st baron x" or "…, jr": not a name
		case len(nameOnly(words)) == 1:
			// "clifford, thomas henry": surname first
			words = append(after, words...)
		default:
			words = append(words, after...)
		}
	}
	return nameOnly(words)
}

func nameOnly(words []string) []string {
	out := words[:0:0]
	for _, w := range words {
		if !nonNameWord(w) {
			out = append(out, w)
		}
	}
	return out
}

// nameParts splits a full name into its given name (first name word)
// and surname (last name word, when there are two or more).
func nameParts(s string) (given, surname string) {
	w := personWords(s)
	switch len(w) {
	case 0:
		return "", ""
	case 1:
		return w[0], ""
	}
	return w[0], w[len(w)-1]
}

// minusWords removes from the normalized string s one occurrence of each
// of the words take.
func minusWords(s string, take []string) string {
	words := strings.Fields(s)
	for _, t := range take {
		for i, w := range words {
			if w == t {
				words = append(words[:i], words[i+1:]...)
				break
			}
		}
	}
	return strings.Join(words, " ")
}

// knownGiven reports whether w is a common given name: the nickname
// table's names and a list of frequent given names in several languages.
// Detection uses it to tell a given-name column from a surname column by
// its values.
func knownGiven(w string) bool {
	return names.NicknameGroup(w) != "" || givenLexicon[w]
}

var givenLexicon = setOf(`john william thomas george james charles henry richard robert edward joseph francis
	samuel frederick arthur alexander david peter walter hugh patrick michael albert alfred ernest philip
	stephen benjamin daniel matthew andrew christopher edmund nicholas anthony herbert harold lewis ralph
	roger gilbert humphrey lawrence leonard owen evan archibald duncan angus malcolm neil isaac abraham
	jacob nathaniel jonathan timothy gregory simon adam martin oliver paul mark luke brian kevin jason
	eric carl karl hans peter pierre jean jacques louis francois michel antoine giovanni giuseppe marco
	luca carlos jose juan luis miguel pedro antonio manuel francisco pablo diego ivan sergei dmitri
	vladimir olga anna maria mary elizabeth anne margaret jane catherine sarah ellen alice emily charlotte
	frances harriet louisa caroline isabella eleanor agnes florence edith maud beatrice dorothy helen
	grace susan martha lucy rose victoria clara ada violet marian emma olivia sophie sophia laura julia
	claire marie sofia lisa linda karen nancy betty sandra donna carol ruth sharon michelle kimberly
	deborah amy angela ashley jennifer jessica amanda melissa rebecca stephanie nicole heather rachel
	hannah natalie megan lauren kate katherine joan judith diana ingrid astrid greta heinz fritz otto
	wolfgang klaus jurgen dieter erik lars nils sven anders mohammed muhammad ahmed ali omar hassan
	fatima aisha wei li ming hiroshi yuki kenji raj priya anil sunil`)
