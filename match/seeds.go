package match

// seedFacts is the wider seed rule, for data where few fields are strong
// enough on their own: person files with a name, a birth date and a
// place, no ID or email. A seed must agree exactly on two independent
// facts that random pairs almost never share, at least one of them
// personal: a strong personal field (birth date, ID, email), the whole
// name (given name and surname, or the full name), or one strong
// address field (postcode, street, phone: u of exact under 1%). Two
// address facts are one household, not one person, so they never make a
// seed on their own. A field is never one of the facts that choose its
// own sample: the name fact is left out for a name field.
type seedFacts struct {
	personal []int // strong personal fields, names excluded
	address  []int // strong household fields
	given    []int
	surname  []int
	full     []int
	name     []bool // per comparison: part of the name fact
}

func newSeedFacts(ds *Dataset, u [][]float64) *seedFacts {
	sf := &seedFacts{name: make([]bool, len(ds.comps))}
	for c, cmp := range ds.comps {
		strong := u[c][exactLevel] < 0.01
		switch k := cmp.field.Kind; k {
		case KindGivenName:
			sf.given, sf.name[c] = append(sf.given, c), true
		case KindSurname:
			sf.surname, sf.name[c] = append(sf.surname, c), true
		case KindFullName:
			sf.full, sf.name[c] = append(sf.full, c), true
		case KindPostcode, KindAddress, KindPhone:
			if strong {
				sf.address = append(sf.address, c)
			}
		default:
			if strong && personalKind(k) {
				sf.personal = append(sf.personal, c)
			}
		}
	}
	return sf
}

// seed reports whether a pair with levels lv is a seed for comparison c.
func (sf *seedFacts) seed(lv []uint8, c int) bool {
	personal, address := 0, 0
	for _, s := range sf.personal {
		if s != c && lv[s] == exactLevel {
			personal++
		}
	}
	if !sf.name[c] && sf.wholeName(lv) {
		personal++
	}
	for _, s := range sf.address {
		if s != c && lv[s] == exactLevel {
			address = 1 // one household fact at most
			break
		}
	}
	return personal >= 1 && personal+address >= 2
}

// wholeName: every given-name and surname comparison agrees exactly (at
// least one of each), or a full-name comparison does.
func (sf *seedFacts) wholeName(lv []uint8) bool {
	for _, c := range sf.full {
		if lv[c] == exactLevel {
			return true
		}
	}
	if len(sf.given) == 0 || len(sf.surname) == 0 {
		return false
	}
	for _, c := range append(sf.given[:len(sf.given):len(sf.given)], sf.surname...) {
		if lv[c] != exactLevel {
			return false
		}
	}
	return true
}
