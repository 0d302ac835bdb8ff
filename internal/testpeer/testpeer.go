// Package testpeer finds the real programs (Debian packages) that
// dirigent's tests talk to instead of mocks. scripts/install-test-peers,
// run by `make test`, installs them.
package testpeer

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of command. When it is missing the test is
// skipped with a message naming the Debian package, or fails when
// DIRIGENT_REQUIRE_PEERS=1 (as in CI), where a skip would hide a gap.
func Require(t testing.TB, command, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(command)
	if err != nil {
		missing(t, command, debianPackage)
	}
	return path
}

// RequirePerl checks for a Perl module a peer needs (swaks needs
// Net::SSLeay for STARTTLS), like Require.
func RequirePerl(t testing.TB, module, debianPackage string) {
	t.Helper()
	if exec.Command("perl", "-M"+module, "-e", "1").Run() != nil {
		missing(t, "perl module "+module, debianPackage)
	}
}

func missing(t testing.TB, what, debianPackage string) {
	t.Helper()
	msg := what + " not found: install the Debian package " + debianPackage + " (make test does this as root)"
	if os.Getenv("DIRIGENT_REQUIRE_PEERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
