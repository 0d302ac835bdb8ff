package mail

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the corpus's .golden files")

// TestCorpus parses real-world-shaped messages and compares each result,
// or its refusal, with the golden file beside it.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if p, err := Parse(raw); err != nil {
				got = "refused: " + err.Error() + "\n"
			} else {
				b, _ := json.MarshalIndent(p, "", "  ")
				got = string(b) + "\n"
			}
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("parsed:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := Parse(raw)
		if err != nil {
			return
		}
		if p.From == "" || !strings.Contains(p.From, "@") {
			t.Fatalf("accepted without a From address: %+v", p)
		}
		if len(p.Text) > 2*maxTextBytes+8 {
			t.Fatalf("text of %d bytes", len(p.Text))
		}
	})
}
