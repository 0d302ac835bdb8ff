package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// nonceLifetime: a nonce older than this is stale; the phone is
// challenged again with stale=true and answers without asking its user.
const nonceLifetime = 5 * time.Minute

// nonces issues and checks digest nonces. A nonce is its issue time and
// an HMAC of it under a per-process secret, so any nonce this process
// issued is recognised without storing it; the state kept is the highest
// nonce count used with each nonce, so a captured Authorization header
// cannot be replayed.
type nonces struct {
	secret [32]byte
	now    func() time.Time
	mu     sync.Mutex
	counts map[string]int // nonce → highest nc seen
}

func newNonces(now func() time.Time) *nonces {
	n := &nonces{now: now, counts: map[string]int{}}
	if _, err := rand.Read(n.secret[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func (n *nonces) issue() string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(n.now().UnixNano()))
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(n.mac(ts[:]))
}

func (n *nonces) mac(ts []byte) []byte {
	m := hmac.New(sha256.New, n.secret[:])
	m.Write(ts)
	return m.Sum(nil)[:16]
}

// check says whether nonce is one of ours, and whether it is stale.
func (n *nonces) check(nonce string) (ours, stale bool) {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 24 || !hmac.Equal(raw[8:], n.mac(raw[:8])) {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	return true, n.now().Sub(issued) > nonceLifetime
}

// use records nonce count nc for nonce and reports whether it is new:
// with qop, each request must count up.
func (n *nonces) use(nonce string, nc int) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if last, seen := n.counts[nonce]; seen && nc <= last {
		return false
	}
	n.counts[nonce] = nc
	if len(n.counts) > 100000 {
		n.pruneLocked()
	}
	return true
}

// prune forgets the counts of stale nonces, which are refused anyway.
func (n *nonces) prune() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pruneLocked()
}

func (n *nonces) pruneLocked() {
	for k := range n.counts {
		if _, stale := n.check(k); stale {
			delete(n.counts, k)
		}
	}
}

// challenge is the WWW-Authenticate (or Proxy-Authenticate) value.
func (n *nonces) challenge(realm string, stale bool) string {
	c := digest.Challenge{Realm: realm, Nonce: n.issue(), Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}
	return c.String()
}

// Outcomes of checking an Authorization header.
var (
	errNoCredentials = errors.New("no credentials")
	errStaleNonce    = errors.New("stale nonce")
	errUnknownUser   = errors.New("unknown user")
	errBadDigest     = errors.New("wrong password or malformed credentials")
)

// maxAuthHeader bounds an Authorization header before it is parsed.
const maxAuthHeader = 4096

// parseCredentials parses an Authorization header value, refusing what
// no phone sends.
func parseCredentials(header string) (*digest.Credentials, error) {
	if header == "" {
		return nil, errNoCredentials
	}
	if len(header) > maxAuthHeader {
		return nil, errBadDigest
	}
	cr, err := digest.ParseCredentials(header)
	if err != nil || cr.Username == "" || cr.Nonce == "" || cr.Response == "" {
		return nil, errBadDigest
	}
	if a := strings.ToUpper(cr.Algorithm); a != "" && a != "MD5" {
		return nil, errBadDigest
	}
	if cr.QOP != "" && cr.QOP != "auth" {
		return nil, errBadDigest
	}
	return cr, nil
}

// verify checks credentials cr for a request of method against the
// password (looked up by user name): errUnknownUser, errStaleNonce,
// errBadDigest or nil.
func (n *nonces) verify(cr *digest.Credentials, realm, method string, password func(user string) (string, bool)) error {
	pw, known := password(cr.Username)
	if !known {
		return errUnknownUser
	}
	ours, stale := n.check(cr.Nonce)
	if !ours || cr.Realm != realm {
		return errBadDigest
	}
	chal := &digest.Challenge{Realm: realm, Nonce: cr.Nonce, Algorithm: cr.Algorithm, Opaque: cr.Opaque}
	if cr.QOP != "" {
		chal.QOP = []string{cr.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: cr.URI, Username: cr.Username, Password: pw, Cnonce: cr.Cnonce, Count: cr.Nc,
	})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cr.Response))) != 1 {
		return errBadDigest
	}
	if stale {
		// The right password with an old nonce: ask again, flagged stale.
		return errStaleNonce
	}
	if cr.QOP != "" && !n.use(cr.Nonce, cr.Nc) {
		return errBadDigest
	}
	return nil
}
