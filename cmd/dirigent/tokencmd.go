package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
)

var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// token makes an API token for another system: the secret, printed once
// for that system, and the configuration block holding only its SHA-256.
func token(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "new" || !tokenName.MatchString(args[1]) {
		return usageError{errors.New("usage: dirigent token new NAME   (NAME: lower-case letters, digits, '-', '_')")}
	}
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand since Go 1.24)
	tok := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(tok))
	fmt.Fprintf(stdout, `# API token for %[1]s. Give %[1]s this token (it is not stored anywhere):
#   %[2]s
# and add this block to dirigent.toml, then restart dirigent:
[[desk.api_tokens]]
name = %[1]q
sha256 = %[3]q
`, args[1], tok, hex.EncodeToString(sum[:]))
	return nil
}
