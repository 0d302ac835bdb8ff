package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestDeskPasswords(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	if _, err := s.DeskUser("anna"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before any password: %v, want ErrNotFound", err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if err := s.SetDeskPassword(ctx, "anna", []byte("hash-1"), at); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeskPassword(ctx, "anna", []byte("hash-2"), at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	u, err := s.DeskUser("anna")
	if err != nil || string(u.PasswordHash) != "hash-2" || !u.Changed.Equal(at.Add(time.Hour)) {
		t.Fatalf("DeskUser = %+v, %v", u, err)
	}
	if _, err := s.DeskUser("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("other user: %v", err)
	}
	if err := s.SetDeskPassword(ctx, "bob", nil, at); err == nil {
		t.Error("empty hash accepted")
	}
}

func TestSearchCustomersByName(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "d.db"))
	for _, name := range []string{"Jörg Müller", "Anna Schmidt", "Joerg Maier", "Hans Mueller-Lüdenscheidt"} {
		if err := s.CreateCustomer(ctx, &Customer{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		query string
		limit int
		want  []string
	}{
		// Umlauts fold: "müll" is "muell", as in both spellings of Müller.
		{"müll", 10, []string{"Hans Mueller-Lüdenscheidt", "Jörg Müller"}},
		{"schm", 10, []string{"Anna Schmidt"}},
		{"jo", 10, []string{"Joerg Maier", "Jörg Müller"}},
		{"jo", 1, []string{"Joerg Maier"}},
		{"jörg mai", 10, []string{"Joerg Maier"}},
		{"nobody", 10, nil},
		{"", 10, nil},
	}
	for _, tt := range tests {
		got, err := s.SearchCustomersByName(tt.query, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range got {
			names = append(names, c.Name)
		}
		if len(names) != len(tt.want) {
			t.Errorf("%q: %v, want %v", tt.query, names, tt.want)
			continue
		}
		for i := range names {
			if names[i] != tt.want[i] {
				t.Errorf("%q: %v, want %v", tt.query, names, tt.want)
				break
			}
		}
	}
}
