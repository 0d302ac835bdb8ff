package journey

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dirigent/store"
)

var ctx = context.Background()

func newJourney(t *testing.T) (*Journey, *store.Store) {
	t.Helper()
	st, err := store.Open(store.Options{Path: filepath.Join(t.TempDir(), "d.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	j, err := New(Config{Region: "DE"}, Deps{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return j, st
}

func importFile(t *testing.T, j *Journey, name string) ImportResult {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := j.ImportCustomers(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestIdentifyCreatesOnceAndNormalises(t *testing.T) {
	j, _ := newJourney(t)
	c1, created, err := j.Identify(ctx, KindPhone, "030 123456", "")
	if err != nil || !created {
		t.Fatalf("first call: %+v created=%v %v", c1, created, err)
	}
	c2, created, err := j.Identify(ctx, KindPhone, "+49 (0)30 12 34 56", "")
	if err != nil || created || c2.ID != c1.ID {
		t.Fatalf("same number written differently: %+v created=%v %v", c2, created, err)
	}
	if _, _, err := j.Identify(ctx, KindPhone, "12", ""); err == nil {
		t.Error("identified a non-number")
	}
	if _, err := New(Config{Region: "XX"}, j.deps); err == nil {
		t.Error("unknown region accepted")
	}
}

func TestImportGermanExcelExport(t *testing.T) {
	j, st := newJourney(t)
	res := importFile(t, j, "excel-utf8-bom.csv")
	if res.Rows != 4 || res.Created != 3 || res.Updated != 0 {
		t.Errorf("result %+v", res)
	}
	wantProblems := []string{
		"line 4: neither a CRM id nor a usable phone or e-mail; row skipped",
		`line 5: not a usable identity: "12" is not a valid phone number; skipped`,
		`line 5: not a usable identity: e-mail address "nicht-mail": mail: missing '@' or angle-addr; skipped`,
		`line 5: value_tier "neun" is not a whole number from 0 to 10; kept as it was`,
	}
	if !slices.Equal(res.Problems, wantProblems) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(res.Problems, "\n"), strings.Join(wantProblems, "\n"))
	}
	c, err := st.CustomerByCRMID("K-100")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Müller; Jörg" || c.ValueTier != 2 || c.Attributes["Stadt"] != "Köln" {
		t.Errorf("K-100: %+v", c)
	}
	ids, _ := st.Identities(c.ID)
	if want := []string{"email:joerg.mueller@beispiel.de", "phone:+491711234567", "phone:+4930123456"}; !slices.Equal(ids, want) {
		t.Errorf("K-100 identities %v, want %v", ids, want)
	}
	if c, _ := st.CustomerByCRMID("K-101"); c == nil || c.Name != `Anna "Ani" Schmidt` {
		t.Errorf("K-101: %+v", c)
	}
	// K-102 has no usable identity but a CRM id: created, nothing linked.
	if c, _ := st.CustomerByCRMID("K-102"); c == nil || c.ValueTier != 0 {
		t.Errorf("K-102: %+v", c)
	}
}

func TestImportWindows1252(t *testing.T) {
	j, st := newJourney(t)
	importFile(t, j, "excel-windows1252.csv")
	c, err := st.CustomerByCRMID("K-200")
	if err != nil || c.Name != "Jürgen Weiß" || c.Attributes["Stadt"] != "München" {
		t.Errorf("K-200: %+v %v", c, err)
	}
}

func TestReimportUpdatesNeverDuplicates(t *testing.T) {
	j, st := newJourney(t)
	caller, _, err := j.Identify(ctx, KindPhone, "030 123456", "") // called before the import
	if err != nil {
		t.Fatal(err)
	}
	first := importFile(t, j, "excel-utf8-bom.csv")
	if first.Created != 2 || first.Updated != 1 {
		t.Errorf("first import %+v: K-100 should adopt the caller's customer", first)
	}
	if c, _ := st.CustomerByCRMID("K-100"); c.ID != caller.ID {
		t.Errorf("K-100 is customer %d, the caller was %d", c.ID, caller.ID)
	}
	again := importFile(t, j, "excel-utf8-bom.csv")
	if again.Created != 0 || again.Updated != 3 {
		t.Errorf("re-import %+v, want only updates", again)
	}
	// A changed export: new tier, a plus-tagged address (the same mailbox),
	// and K-300 claiming K-100's mobile, which stays with K-100.
	res := importFile(t, j, "reimport.csv")
	if res.Created != 1 || res.Updated != 1 {
		t.Errorf("changed export %+v", res)
	}
	if c, _ := st.CustomerByCRMID("K-100"); c.ValueTier != 4 || c.Name != "Joerg Mueller" {
		t.Errorf("K-100 after the changed export: %+v", c)
	}
	k100, _ := st.CustomerByCRMID("K-100")
	if owner, _ := st.LookupIdentity("phone:+491711234567"); owner != k100.ID {
		t.Errorf("the mobile moved to customer %d", owner)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "phone:+491711234567") {
		t.Errorf("problems %v", res.Problems)
	}
}

func TestImportRefusesFilesWithoutHeader(t *testing.T) {
	j, _ := newJourney(t)
	for _, in := range []string{"", "K-1;Joe;030 123456\n"} {
		if _, err := j.ImportCustomers(ctx, strings.NewReader(in)); err == nil {
			t.Errorf("%q imported", in)
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	for _, name := range []string{"excel-utf8-bom.csv", "excel-windows1252.csv", "reimport.csv"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("a;\"b\nc\";d\n\"\"\"x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := readCSV(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, r := range rows {
			if r.line < 1 {
				t.Fatalf("row without a line: %+v", r)
			}
			for _, field := range r.fields {
				if !utf8Valid(field) {
					t.Fatalf("invalid UTF-8 after decoding: %q", field)
				}
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
