package match

import (
	"fmt"
	"testing"
)

func TestDetectFEBRL(t *testing.T) {
	tab := readTable(t, "../testdata/febrl/dataset1.csv")
	cfg, dets := Detect(tab.Header, tab.Rows, "")
	want := map[string]Kind{
		"rec_id": KindIgnore, "given_name": KindGivenName, "surname": KindSurname, "street_number": KindStreetNumber,
		"address_1": KindAddress, "address_2": KindAddress, "suburb": KindCity, "postcode": KindPostcode,
		"state": KindState, "date_of_birth": KindDate, "soc_sec_id": KindID,
	}
	for _, d := range dets {
		if want[d.Column] != d.Kind {
			t.Errorf("%s: detected %s (%s), want %s", d.Column, d.Kind, d.Reason, want[d.Column])
		}
	}
	if cfg.IDColumn != "rec_id" {
		t.Errorf("id column %q, want rec_id", cfg.IDColumn)
	}
	if len(cfg.Fields) != 10 || len(cfg.Blocking) == 0 {
		t.Errorf("%d fields, %d blocking rules", len(cfg.Fields), len(cfg.Blocking))
	}
	for _, fl := range cfg.Fields {
		if fl.Name == "given_name" && fl.Swap != "surname" {
			t.Errorf("given_name swap partner %q, want surname", fl.Swap)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// Columns with meaningless names are classified by their values.
func TestDetectByValues(t *testing.T) {
	header := []string{"c_email", "c_phone", "c_date", "c_ssn", "c_zip", "c_num", "c_const", "c_empty", "c_street", "c_state", "key"}
	var rows [][]string
	states := []string{"nsw", "vic", "qld", "wa"}
	for i := 0; i < 200; i++ {
		rows = append(rows, []string{
			fmt.Sprintf("user%d@example.com", i),
			fmt.Sprintf("+61 2 %04d %04d", i, 9000-i),
			fmt.Sprintf("%02d/%02d/19%02d", 1+i%28, 1+i%12, 40+i%50),
			fmt.Sprintf("%07d", 1000000+i*37),
			fmt.Sprintf("%04d", 2000+i%300),
			fmt.Sprint(1 + i%120),
			"same",
			"",
			fmt.Sprintf("%d oak street", i),
			states[i%4],
			fmt.Sprintf("k%d", i),
		})
	}
	_, dets := Detect(header, rows, "")
	want := []Kind{KindEmail, KindPhone, KindDate, KindID, KindPostcode, KindStreetNumber, KindIgnore, KindIgnore, KindAddress, KindState, KindIgnore}
	for i, d := range dets {
		if d.Kind != want[i] {
			t.Errorf("%s: detected %s (%s), want %s", d.Column, d.Kind, d.Reason, want[i])
		}
	}
}

func TestSegmentConfig(t *testing.T) {
	cfg := SegmentConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	recs := []Record{
		{ID: "u1", Fields: map[string]string{"firstName": "Jon", "lastName": "Smiht", "address.city": "London", "birthday": "1980-05-17"}},
		{ID: "u2", Fields: map[string]string{"firstName": "John", "lastName": "Smith", "email": "john@example.com", "birthday": "17/05/1980", "address.postalCode": "SW1A 1AA"}},
	}
	ds, err := NewDataset(cfg, recs)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := ds.Block()
	if len(c.Pairs) != 1 {
		t.Errorf("blocking found %d pairs, want the one pair", len(c.Pairs))
	}
}

func TestDecodeConfig(t *testing.T) {
	good := `{"fields":[{"name":"fn","kind":"given_name","swap":"ln"},{"name":"ln","kind":"surname","swap":"fn"},{"name":"dob","kind":"date","method":"date"}],
	"blocking":[{"keys":[{"field":"ln","transform":"soundex"},{"field":"dob","transform":"year"}]},{"keys":[{"field":"ln"}],"window":5}]}`
	if _, err := DecodeConfig(stringsReader(good)); err != nil {
		t.Errorf("good config: %v", err)
	}
	for _, bad := range []string{
		`{"fields":[{"name":"fn","kind":"given_name","method":"nope"}]}`,
		`{"fields":[{"name":"fn","kind":"given_name","swap":"missing"}]}`,
		`{"fields":[{"name":"fn","kind":"given_name"}],"blocking":[{"keys":[{"field":"zz"}]}]}`,
		`{"fields":[{"name":"fn","kind":"given_name"}],"blocking":[{"keys":[{"field":"fn","transform":"rot13"}]}]}`,
		`{"fields":[]}`,
		`{"fields":[{"name":"fn"}], "typo": 1}`,
	} {
		if _, err := DecodeConfig(stringsReader(bad)); err == nil {
			t.Errorf("config accepted: %s", bad)
		}
	}
}

// The Splink fake-people file under headers in other languages, and
// under none that mean anything: the same kinds, from the header words
// or the values.
func TestDetectOtherLanguagesHeaders(t *testing.T) {
	tab := readTable(t, "../testdata/splink/fake_1000.csv")
	want := []Kind{KindIgnore, KindGivenName, KindSurname, KindDate, KindCity, KindEmail}
	tests := []struct {
		lang   string
		header []string
		want   []Kind
	}{
		{"fr", []string{"nº", "Prénom", "Nom", "Date de naissance", "Ville", "Courriel"}, want},
		{"de", []string{"Nr.", "Vorname", "Nachname", "Geburtsdatum", "Ort", "E-Mail"}, want},
		{"es", []string{"id", "Nombre", "Apellidos", "Fecha de nacimiento", "Ciudad", "Correo"}, want},
		{"it", []string{"n", "Nome", "Cognome", "Data di nascita", "Città", "Email"}, want},
		{"nl", []string{"nr", "Voornaam", "Achternaam", "Geboortedatum", "Woonplaats", "E-mail"}, want},
		// by values: the row number is no street number, the surname and
		// city stay text
		{"none", []string{"a", "b", "c", "d", "e", "f"}, []Kind{KindIgnore, KindGivenName, KindText, KindDate, KindText, KindEmail}},
	}
	for _, tt := range tests {
		_, dets := Detect(tt.header, tab.Rows, "")
		for i, d := range dets[:len(tt.want)] {
			if d.Kind != tt.want[i] {
				t.Errorf("%s: %s detected %s (%s), want %s", tt.lang, d.Column, d.Kind, d.Reason, tt.want[i])
			}
		}
	}
}
