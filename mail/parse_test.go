package mail

import (
	"bytes"
	"dirigent/store"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
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
		// Each attachment listed is there to download, as listed.
		for i, want := range p.Attachments[:min(len(p.Attachments), 3)] {
			got, data, err := attachment(raw, i)
			if err != nil || got.Name != want.Name || got.Type != want.Type || int64(len(data)) != want.Size {
				t.Fatalf("attachment %d: %+v (%d bytes), %v; listed %+v", i, got, len(data), err, want)
			}
		}
	})
}

// attachment is WriteAttachment into memory.
func attachment(raw []byte, n int) (store.Attachment, []byte, error) {
	var got store.Attachment
	var buf bytes.Buffer
	_, err := WriteAttachment(raw, n, func(a store.Attachment) (io.Writer, error) {
		got = a
		return &buf, nil
	})
	return got, buf.Bytes(), err
}

// TestAttachments: a message's attachments are listed with their whole
// size (beyond what is read of a text), and each is there, by its
// number, with its bytes as sent: a text file keeps its charset. A part
// in an unknown charset or transfer encoding is an attachment all the
// same (as it is), and a text part with a file name is a file, not the
// mail's text.
func TestAttachments(t *testing.T) {
	picture := make([]byte, 3*maxTextBytes/2)
	for i := range picture {
		picture[i] = byte(i * 7)
	}
	encoded := base64.StdEncoding.EncodeToString(picture)
	var lines strings.Builder
	for len(encoded) > 76 {
		lines.WriteString(encoded[:76] + "\r\n")
		encoded = encoded[76:]
	}
	lines.WriteString(encoded + "\r\n")
	latin1 := "M\xfcller;\xe4\xf6\xfc\r\n"
	raw := []byte("From: joe@example.org\r\nSubject: Fotos\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline; filename=notizen.txt\r\n\r\nNotiz\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAnbei.\r\n" +
		"--b\r\nContent-Type: text/csv; charset=iso-8859-1\r\nContent-Disposition: attachment; filename=\"liste.csv\"\r\n\r\n" + latin1 +
		"--b\r\nContent-Type: text/plain; charset=x-unbekannt\r\nContent-Disposition: attachment; filename=alt.txt\r\n\r\nalt\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode\r\nContent-Disposition: attachment; filename=a.uue\r\n\r\nbegin 644 a\r\n" +
		"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"=?utf-8?q?Gr=C3=BC=C3=9Fe.png?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + lines.String() +
		"--b--\r\n")
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Attachment{
		{Name: "notizen.txt", Type: "text/plain", Size: 5},
		{Name: "liste.csv", Type: "text/csv", Size: int64(len(latin1) - 2)},
		{Name: "alt.txt", Type: "text/plain", Size: 3},
		{Name: "a.uue", Type: "application/octet-stream", Size: 11},
		{Name: "Grüße.png", Type: "image/png", Size: int64(len(picture))},
	}
	if p.Text != "Anbei." || !slices.Equal(p.Attachments, want) {
		t.Fatalf("parsed %q with %+v, want %+v", p.Text, p.Attachments, want)
	}
	for n, data := range map[int]string{1: latin1[:len(latin1)-2], 4: string(picture)} {
		a, got, err := attachment(raw, n)
		if err != nil || a.Name != want[n].Name || string(got) != data {
			t.Errorf("attachment %d: %+v, %d bytes, %v", n, a, len(got), err)
		}
	}
	for _, n := range []int{5, -1} {
		if _, _, err := attachment(raw, n); !errors.Is(err, ErrNoAttachment) {
			t.Errorf("attachment %d: %v", n, err)
		}
	}
	refused := errors.New("not this one")
	if _, err := WriteAttachment(raw, 0, func(store.Attachment) (io.Writer, error) { return nil, refused }); !errors.Is(err, refused) {
		t.Errorf("a refused attachment: %v", err)
	}

	// A message of many parts lists the first maxAttachments.
	many := "From: joe@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + strings.Repeat("--b\r\nContent-Type: a/b\r\n\r\n\r\n", 3*maxAttachments) + "--b--\r\n"
	if p, err := Parse([]byte(many)); err != nil || len(p.Attachments) != maxAttachments {
		t.Errorf("a message of %d parts: %d attachments listed, %v", 3*maxAttachments, len(p.Attachments), err)
	}
}

// The mail system's mail is a program's whatever its Reply-To; a noreply
// sender is for the channel to weigh against Reply-To.
func TestAutomaticSenders(t *testing.T) {
	for _, tc := range []struct {
		headers   string
		automatic bool
	}{
		{"From: MAILER-DAEMON@mx.example.org\r\nReply-To: bob@example.org", true},
		{"From: postmaster@example.org", true},
		{"From: noreply@shop.example\r\nReply-To: jana@example.org", false},
		{"From: joe@example.org\r\nAuto-Submitted: auto-replied", true},
		{"From: joe@example.org", false},
	} {
		p, err := Parse([]byte(tc.headers + "\r\n\r\nx"))
		if err != nil || p.Automatic != tc.automatic {
			t.Errorf("%q: automatic %v, %v", tc.headers, p.Automatic, err)
		}
	}
}
