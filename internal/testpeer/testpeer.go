// Package testpeer finds the real programs (Debian packages) that
// dirigent's tests talk to instead of mocks. scripts/install-test-peers,
// run by `make test`, installs them.
package testpeer

import (
	"net"
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
	skipOrFail(t, what+" not found: install the Debian package "+debianPackage+" (make test does this as root)")
}

// RequireRoot skips a test that needs root, or fails it where every peer
// is required (CI runs as root).
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Getuid() != 0 {
		skipOrFail(t, what+" needs root; run make test as root")
	}
}

// skipOrFail skips a test that lacks what it needs, or fails it under
// DIRIGENT_REQUIRE_PEERS=1 (as in CI), where a skip would hide a gap.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("DIRIGENT_REQUIRE_PEERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreeAddr is a loopback address with a port nobody listens on, for a
// peer to take.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
