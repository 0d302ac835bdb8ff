package sip

import (
	"strings"
	"unicode"
)

// headerText makes text from outside fit to stand in a header dirigent
// sends, quoted (a caller's display name) or bare (in a reason phrase):
// one line of valid UTF-8, each control character (and Unicode line or
// paragraph separator) a space so that the words on either side stay
// apart, quotes and backslashes left out so that it cannot end or
// escape a quoted string, trimmed, at most max characters.
func headerText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return -1
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	n := 0
	for i := range s {
		if n == max {
			return strings.TrimSpace(s[:i])
		}
		n++
	}
	return s
}
