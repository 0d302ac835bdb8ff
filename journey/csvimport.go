package journey

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"dirigent/store"
)

// MaxImportBytes bounds one CSV import.
const MaxImportBytes = 64 << 20

// ImportResult sums up a customer import.
type ImportResult struct {
	Rows     int      `json:"rows"`
	Created  int      `json:"created"`
	Updated  int      `json:"updated"`
	Problems []string `json:"problems,omitempty"` // "line 7: …", the rest of the file was imported
}

// Column names a CRM export may use, English and German, for the fields
// dirigent knows; every other column becomes a free attribute.
var columnAliases = map[string]string{
	"crm_id": "crm_id", "crm id": "crm_id", "crmid": "crm_id", "customer_id": "crm_id", "kundennummer": "crm_id", "kundennr": "crm_id", "kunden-nr": "crm_id",
	"name": "name", "kundenname": "name", "firma": "name", "company": "name",
	"phone": "phone", "phones": "phone", "telefon": "phone", "tel": "phone", "mobile": "phone", "mobil": "phone", "handy": "phone",
	"email": "email", "e-mail": "email", "emails": "email", "mail": "email",
	"value_tier": "value_tier", "tier": "value_tier", "wertstufe": "value_tier",
}

// ImportCustomers reads a CRM export and creates or updates one customer
// per row. It copes with what spreadsheets write: a UTF-8 byte order mark
// or Windows-1252 text, semicolon, comma or tab separators, quoted fields.
// Columns: crm_id, name, phone, email, value_tier (or their German names);
// phone and email cells may hold several values separated by "|" or ",";
// any other column is kept as an attribute. A bad row is reported with
// its line and skipped; the others are imported.
func (j *Journey) ImportCustomers(ctx context.Context, r io.Reader) (ImportResult, error) {
	var res ImportResult
	rows, err := readCSV(r)
	if err != nil {
		return res, err
	}
	if len(rows) == 0 {
		return res, errors.New("import: the file is empty")
	}
	header := rows[0].fields
	cols := make([]string, len(header))
	known := false
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if alias, ok := columnAliases[h]; ok {
			cols[i], known = alias, true
		} else {
			cols[i] = "attr:" + strings.TrimSpace(header[i])
		}
	}
	if !known {
		return res, fmt.Errorf("import: the first line must name the columns (crm_id, name, phone, email, value_tier); it has %q", header)
	}
	for _, row := range rows[1:] {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Rows++
		problem := func(format string, args ...any) {
			res.Problems = append(res.Problems, fmt.Sprintf("line %d: ", row.line)+fmt.Sprintf(format, args...))
		}
		in := store.ImportedCustomer{Now: j.deps.Now().UTC()}
		for i, v := range row.fields {
			v = strings.TrimSpace(v)
			if i >= len(cols) {
				problem("more fields than the header names; extra ones ignored")
				break
			}
			if v == "" {
				continue
			}
			switch col := cols[i]; col {
			case "crm_id":
				in.CRMID = v
			case "name":
				in.Name = v
			case "value_tier":
				tier, err := strconv.Atoi(v)
				if err != nil || tier < 0 || tier > 10 {
					problem("value_tier %q is not a whole number from 0 to 10; kept as it was", v)
					continue
				}
				in.ValueTier = &tier
			case "phone", "email":
				for _, part := range splitMulti(v) {
					id, err := j.normalizer.Normalize(col, part)
					if err != nil {
						problem("%v; skipped", err)
						continue
					}
					in.Identities = append(in.Identities, id.String())
				}
			default:
				if in.Attributes == nil {
					in.Attributes = map[string]string{}
				}
				in.Attributes[strings.TrimPrefix(col, "attr:")] = v
			}
		}
		if in.CRMID == "" && len(in.Identities) == 0 {
			problem("neither a CRM id nor a usable phone or e-mail; row skipped")
			continue
		}
		out, err := j.deps.Store.ImportCustomer(ctx, in)
		if err != nil {
			problem("%v; row skipped", err)
			continue
		}
		if out.Created {
			res.Created++
		} else {
			res.Updated++
		}
		for _, s := range out.Skipped {
			problem("identity %s already belongs to another customer; not moved (merge the two to combine them)", s)
		}
		for _, s := range out.Unlinked {
			problem("identity %s was taken from this customer; not given back (dirigent customer link gives it back)", s)
		}
	}
	return res, nil
}

type csvRow struct {
	line   int
	fields []string
}

// readCSV decodes a spreadsheet's CSV export into rows with their lines.
func readCSV(r io.Reader) ([]csvRow, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(data) > MaxImportBytes {
		return nil, fmt.Errorf("import: file larger than %d MiB", MaxImportBytes>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(data) {
		// Excel on German Windows writes Windows-1252.
		if data, err = charmap.Windows1252.NewDecoder().Bytes(data); err != nil {
			return nil, fmt.Errorf("import: text is neither UTF-8 nor Windows-1252: %w", err)
		}
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = sniffSeparator(data)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	var rows []csvRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		rows = append(rows, csvRow{line: line, fields: rec})
	}
}

// sniffSeparator picks the separator the first line uses most.
func sniffSeparator(data []byte) rune {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	best, n := ',', bytes.Count(first, []byte(","))
	for _, sep := range []rune{';', '\t'} {
		if c := bytes.Count(first, []byte(string(sep))); c > n {
			best, n = sep, c
		}
	}
	return best
}

// splitMulti splits a cell holding several phones or addresses.
func splitMulti(v string) []string {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '|' || r == ',' || r == '\n' })
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
