package journey

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	de := Normalizer{Region: "DE"}
	tests := []struct {
		kind, raw, want string
	}{
		{KindPhone, "+49 30 123456", "+4930123456"},
		{KindPhone, "0049 30 123456", "+4930123456"},
		{KindPhone, "0049 (0)30 123456", "+4930123456"},
		{KindPhone, "+49 (0)30 123456", "+4930123456"},
		{KindPhone, "030 123456", "+4930123456"},
		{KindPhone, "(030) 12 34 56", "+4930123456"},
		{KindPhone, "030/123456", "+4930123456"},
		{KindPhone, "030 1234567-89", "+4930123456789"}, // a German direct-dial number
		{KindPhone, "+49 30 1234567 ext. 12", "+49301234567"},
		{KindPhone, "tel:+49-30-1234567;ext=12", "+49301234567"},
		{KindPhone, "0171 1234567", "+491711234567"},
		{KindPhone, "+1 (650) 253-0000", "+16502530000"},
		{KindPhone, "0043 1 5134567", "+4315134567"}, // Vienna, from Germany
		{KindEmail, "Joe@Example.COM", "joe@example.com"},
		{KindEmail, "  joe+shop@example.com ", "joe@example.com"},
		{KindEmail, "Jörg Müller <Joerg.Mueller@Beispiel.de>", "joerg.mueller@beispiel.de"},
		{KindEmail, "mailto:anna@example.org", "anna@example.org"},
		{KindEmail, "+tag@example.com", "+tag@example.com"},
		{KindSIP, "sip:Joe@PBX.example.com", "Joe@pbx.example.com"},
		{KindSIP, `"Joe" <sip:joe:secret@pbx.example.com:5060;transport=tcp>`, "joe@pbx.example.com"},
		{KindSIP, "sips:4930123456@[2001:db8::1]:5061", "4930123456@[2001:db8::1]"},
	}
	for _, tt := range tests {
		got, err := de.Normalize(tt.kind, tt.raw)
		if err != nil || got.Value != tt.want {
			t.Errorf("%s %q = %q, %v; want %q", tt.kind, tt.raw, got.Value, err, tt.want)
		}
	}
	us := Normalizer{Region: "US"}
	if got, _ := us.Phone("(650) 253-0000"); got != "+16502530000" {
		t.Errorf("US national: %q", got)
	}
}

func TestNormalizeRefusals(t *testing.T) {
	de := Normalizer{Region: "DE"}
	for _, tt := range []struct{ kind, raw string }{
		{KindPhone, ""},
		{KindPhone, "abc"},
		{KindPhone, "12"},
		{KindPhone, "030"},
		{KindEmail, "joe"},
		{KindEmail, "joe@localhostx"},
		{KindEmail, "a@b@c.de"},
		{KindSIP, "sip:"},
		{KindSIP, "sip:@host"},
		{KindSIP, "sip:joe@\f:"}, // TrimSpace would take the \f away on the next pass
		{KindSIP, "sip:joe@pbx\u00a0:5060"},
		{KindSIP, "sip:jo\x00e@pbx"},
		{KindSIP, "sip:joe@pb\x7fx"},
		{"fax", "+4930123456"},
	} {
		if got, err := de.Normalize(tt.kind, tt.raw); !errors.Is(err, ErrBadIdentity) {
			t.Errorf("%s %q = %q, %v; want ErrBadIdentity", tt.kind, tt.raw, got, err)
		}
	}
	if _, err := de.Parse("+4930123456"); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("Parse without kind: %v", err)
	}
	if id, err := de.Parse("phone:030 123456"); err != nil || id.String() != "phone:+4930123456" {
		t.Errorf("Parse: %v %v", id, err)
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"phone:+49 (0)30 123456", "email:Joe <joe+x@example.com>", "sip:joe@[::1]:5060;x=y", "phone:", "sip:<>"} {
		f.Add(s)
	}
	de := Normalizer{Region: "DE"}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := de.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadIdentity) {
				t.Fatalf("%q: error %v does not wrap ErrBadIdentity", s, err)
			}
			return
		}
		// Normal forms are fixed points.
		again, err := de.Normalize(id.Kind, id.Value)
		if err != nil || again != id {
			t.Fatalf("%q → %v, renormalised %v, %v", s, id, again, err)
		}
	})
}
