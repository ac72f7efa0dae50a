package names

import (
	"math"
	"testing"
)

func TestJaroWinkler(t *testing.T) {
	tests := []struct {
		a, b string
		want float64
	}{
		{"martha", "marhta", 0.9611},
		{"dwayne", "duane", 0.84},
		{"dixon", "dicksonx", 0.8133},
		{"", "", 1},
		{"abc", "", 0},
		{"same", "same", 1},
		{"иванов", "иванова", 0.9714}, // Cyrillic compares by rune
		{"王小明", "王小明", 1},
	}
	for _, tt := range tests {
		if got := JaroWinkler([]rune(tt.a), []rune(tt.b)); math.Abs(got-tt.want) > 0.001 {
			t.Errorf("JaroWinkler(%q, %q) = %.4f, want %.4f", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"  José  García ", "jose garcia"},
		{"O'Brien-Smith", "o brien smith"},
		{"MÜLLER", "muller"},
		{"Иван", "иван"},
		{"", ""},
		{"  ", ""},
		{"---", ""},
	} {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDisagree(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"Ann", "Bob", true},
		{"Maria", "Steven", true},
		{"Anna", "Ann", false},        // nickname table
		{"Bob", "Robert", false},      // nickname
		{"Bobby", "Rob", false},       // two nicknames of one name
		{"Jon", "John", false},        // nickname, and alike
		{"Jhon", "John", false},       // typo: alike
		{"Micheal", "Michael", false}, // typo
		{"J.", "John", false},         // initial
		{"Sam", "Samantha", false},    // prefix
		{"ANN", " ann ", false},       // case and spaces
		{"José", "Jose", false},       // accents
		{"Mary Ann", "Mary", false},   // first word only
		{"", "Bob", false},            // missing
		{"Bob", "", false},            // missing
		{"---", "Bob", false},         // nothing left after normalising
		{"Jonathan", "John", true},    // not in the table, not alike enough
		{"Jennifer", "Jessica", true}, // same initial, different people
		{"Kevin", "Karen", true},      // a household's two K names
		{"Laura", "Linda", true},      // JW 0.76
		{"Steven", "Stephen", false},  // nickname table
		{"Christine", "Chris", false}, // prefix
		{"Elizabeth", "Beth", false},  // nickname
		{"Brian", "Bryan", false},     // spelling variant: alike
		{"Sara", "Sarah", false},      // prefix
		{"Иван", "Мария", true},       // other scripts compare by rune
	} {
		if got := Disagree(tt.a, tt.b, 0.85); got != tt.want {
			t.Errorf("Disagree(%q, %q) = %v, want %v (JW %.3f)", tt.a, tt.b, got, tt.want,
				JaroWinkler([]rune(Normalize(tt.a)), []rune(Normalize(tt.b))))
		}
		if got := Disagree(tt.b, tt.a, 0.85); got != tt.want {
			t.Errorf("Disagree(%q, %q) is not symmetric", tt.b, tt.a)
		}
	}
}
