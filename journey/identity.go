package journey

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// Kinds of identity.
const (
	KindPhone = "phone"
	KindEmail = "email"
	KindSIP   = "sip"
)

// Identity is a normalised way to reach a customer, written "kind:value":
// phone:+4930123456, email:joe@example.com, sip:joe@pbx.example.com.
type Identity struct {
	Kind, Value string
}

func (id Identity) String() string { return id.Kind + ":" + id.Value }

// ErrBadIdentity is wrapped by every normalisation error.
var ErrBadIdentity = errors.New("not a usable identity")

// Normalizer turns what channels and CRM exports say into identities.
type Normalizer struct {
	// Region is the ISO 3166 country (e.g. "DE") whose national format
	// numbers without a country code are in.
	Region string
}

// Normalize parses raw as an identity of kind.
func (n Normalizer) Normalize(kind, raw string) (Identity, error) {
	var v string
	var err error
	switch kind {
	case KindPhone:
		v, err = n.Phone(raw)
	case KindEmail:
		v, err = Email(raw)
	case KindSIP:
		v, err = SIP(raw)
	default:
		err = fmt.Errorf("%w: unknown kind %q (want phone, email or sip)", ErrBadIdentity, kind)
	}
	return Identity{Kind: kind, Value: v}, err
}

// Parse parses "kind:value" and normalises the value.
func (n Normalizer) Parse(s string) (Identity, error) {
	kind, raw, ok := strings.Cut(s, ":")
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q has no kind (want e.g. phone:+4930123456)", ErrBadIdentity, s)
	}
	return n.Normalize(kind, raw)
}

// Phone returns raw in E.164 (+4930123456). National numbers ("030 123456")
// are read in the normaliser's region; 00 and + prefixes, "(0)" trunk
// prefixes, spaces, dashes and brackets are understood; an extension
// ("ext. 12", ";ext=12") is dropped, since caller IDs do not carry one.
func (n Normalizer) Phone(raw string) (string, error) {
	raw = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(raw), "tel:"))
	if raw == "" {
		return "", fmt.Errorf("%w: empty phone number", ErrBadIdentity)
	}
	num, err := phonenumbers.Parse(raw, n.Region)
	if err != nil {
		return "", fmt.Errorf("%w: phone number %q: %v", ErrBadIdentity, raw, err)
	}
	// Valid means in a number range the country really uses, which also
	// keeps internal extensions and garbage out.
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w: %q is not a valid phone number", ErrBadIdentity, raw)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// Email returns raw as a lower-case address without display name, and
// without a plus tag: joe+shop@example.com is joe@example.com, since
// people use tags to sort mail, not to be someone else.
func Email(raw string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(raw), "mailto:")))
	if err != nil {
		return "", fmt.Errorf("%w: e-mail address %q: %v", ErrBadIdentity, raw, err)
	}
	local, domain, _ := strings.Cut(strings.ToLower(a.Address), "@")
	if tagless, _, tagged := strings.Cut(local, "+"); tagged && tagless != "" {
		local = tagless
	}
	if local == "" || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", fmt.Errorf("%w: e-mail address %q", ErrBadIdentity, raw)
	}
	return local + "@" + domain, nil
}

// SIP returns a SIP URI's user@host (display name, scheme, port, password
// and parameters dropped, host lower-cased; the user part is
// case-sensitive in SIP and kept).
func SIP(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if i, j := strings.IndexByte(s, '<'), strings.LastIndexByte(s, '>'); i >= 0 && j > i {
		s = s[i+1 : j]
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "sips:"):
		s = s[5:]
	case strings.HasPrefix(lower, "sip:"):
		s = s[4:]
	}
	if i := strings.IndexAny(s, ";?"); i >= 0 {
		s = s[:i]
	}
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		user, host = "", s
	}
	user, _, _ = strings.Cut(user, ":") // user:password
	if h, _, found := strings.Cut(host, ":"); found && !strings.HasPrefix(host, "[") {
		host = h
	} else if strings.HasPrefix(host, "[") {
		if k := strings.IndexByte(host, ']'); k > 0 {
			host = host[:k+1]
		}
	}
	host = strings.ToLower(host)
	if user == "" || host == "" || strings.IndexFunc(user+host, notInSIPURI) >= 0 {
		return "", fmt.Errorf("%w: SIP URI %q", ErrBadIdentity, raw)
	}
	return user + "@" + host, nil
}

// notInSIPURI reports the runes a SIP URI's user and host never hold
// (RFC 3261 escapes them). Control characters and every kind of space
// are refused rather than kept, since TrimSpace would strip one at the
// end of a normal form and make it normalise to something else.
func notInSIPURI(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>"`, r)
}
