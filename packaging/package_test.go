// Package packaging holds no Go code, only the tests of what `make
// package` builds: the .deb and .rpm checked by lintian and rpmlint, the
// systemd unit checked by systemd-analyze, the packages installed into a
// debootstrapped Debian root, the monitoring kit checked by promtool
// against a running daemon, and the unit's system-call filter checked
// against the calls a running daemon makes.
package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"dirigent/internal/testpeer"
)

// repoRoot is where the tests run the build and install scripts from.
const repoRoot = ".."

var workDir string // removed by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dirigent-packaging-test-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builtPackages are two builds of the working tree: old with the version
// `make package` would use, new with a higher one (for upgrades).
type builtPackages struct {
	oldDeb, newDeb, oldRPM, newRPM string
	err                            error
	log                            string
}

var (
	buildOnce sync.Once
	built     builtPackages
)

// packages builds the .deb and .rpm once for every test that needs them,
// with scripts/build-package as `make package` does.
func packages(t *testing.T) builtPackages {
	t.Helper()
	buildOnce.Do(func() { built = buildPackages() })
	if built.err != nil {
		t.Fatalf("building the packages: %v\n%s", built.err, built.log)
	}
	return built
}

func goCommand() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func buildPackages() builtPackages {
	var b builtPackages
	var log bytes.Buffer
	run := func(version, dist string) (deb, rpm string, err error) {
		cmd := exec.Command("bash", "scripts/build-package")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GO="+goCommand(), "DIST="+dist, "DIRIGENT_PKG_VERSION="+version)
		out, err := cmd.CombinedOutput()
		log.Write(out)
		if err != nil {
			return "", "", err
		}
		debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
		rpms, _ := filepath.Glob(filepath.Join(dist, "*.rpm"))
		if len(debs) != 1 || len(rpms) != 1 {
			return "", "", &buildError{"want one .deb and one .rpm in " + dist}
		}
		return debs[0], rpms[0], nil
	}
	cmd := exec.Command("bash", "scripts/build-package", "--print-version")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		b.err = err
		return b
	}
	version := strings.TrimSpace(string(out))
	if b.oldDeb, b.oldRPM, b.err = run(version, filepath.Join(workDir, "old")); b.err != nil {
		b.log = log.String()
		return b
	}
	// Semver build metadata sorts after the version without it for dpkg
	// (+ after the end) and rpm (one more segment).
	upgrade := version + "+upgrade"
	if strings.Contains(version, "+") {
		upgrade = version + ".upgrade"
	}
	b.newDeb, b.newRPM, b.err = run(upgrade, filepath.Join(workDir, "new"))
	b.log = log.String()
	return b
}

type buildError struct{ msg string }

func (e *buildError) Error() string { return e.msg }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readme is the README, where every lintian and rpmlint warning the
// packages get must be explained.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var lintianTag = regexp.MustCompile(`(?m)^([EWIPX]): dirigent[^:]*: ([a-z0-9-]+)`)

func TestLintianAcceptsTheDeb(t *testing.T) {
	lintian := testpeer.Require(t, "lintian", "lintian")
	p := packages(t)
	out, err := exec.Command(lintian, "--pedantic", "--fail-on", "error", p.oldDeb).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Errorf("lintian failed (errors are not allowed): %v", err)
	}
	doc := readme(t)
	for _, m := range lintianTag.FindAllStringSubmatch(string(out), -1) {
		switch m[1] {
		case "E":
			t.Errorf("lintian error %s", m[2])
		case "W":
			if !strings.Contains(doc, "`"+m[2]+"`") {
				t.Errorf("lintian warning %s is not explained in README.md (Package checks)", m[2])
			}
		}
	}
}

var rpmlintFinding = regexp.MustCompile(`(?m)^dirigent\.[a-z0-9_]+: ([EW]): ([a-z0-9%-]+)`)

func TestRpmlintAcceptsTheRPM(t *testing.T) {
	rpmlint := testpeer.Require(t, "rpmlint", "rpmlint")
	testpeer.Require(t, "cpio", "cpio")
	p := packages(t)

	// nfpm writes the payload with absolute names (/usr/bin/dirigent) and
	// rpmlint unpacks it with `cpio -id`, which as root would write them
	// into this machine's / . A cpio first in PATH that strips the leading
	// slash keeps the unpacking in rpmlint's temporary directory.
	wrapDir := t.TempDir()
	wrapper := "#!/bin/sh\nexec " + testpeer.Require(t, "cpio", "cpio") + " --no-absolute-filenames \"$@\"\n"
	if err := os.WriteFile(filepath.Join(wrapDir, "cpio"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	payload := rpmPaths(t, p.oldRPM)
	var existed []string
	for _, f := range payload {
		if fileExists(f) {
			existed = append(existed, f)
		}
	}

	cmd := exec.Command(rpmlint, "-c", filepath.Join(repoRoot, "packaging", "rpmlint.toml"), p.oldRPM)
	cmd.Env = append(os.Environ(), "PATH="+wrapDir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("rpmlint:\n%s", out)

	for _, f := range payload {
		if fileExists(f) && !contains(existed, f) {
			t.Errorf("rpmlint unpacked %s into this machine's root: remove it", f)
		}
	}
	if err != nil {
		t.Errorf("rpmlint failed: %v", err)
	}
	if !regexp.MustCompile(`\b1 packages and 0 specfiles checked; 0 errors`).Match(out) {
		t.Errorf("rpmlint did not check the package with 0 errors")
	}
	doc := readme(t)
	for _, m := range rpmlintFinding.FindAllStringSubmatch(string(out), -1) {
		switch m[1] {
		case "E":
			t.Errorf("rpmlint error %s", m[2])
		case "W":
			if !strings.Contains(doc, "`"+m[2]+"`") {
				t.Errorf("rpmlint warning %s is not explained in README.md (Package checks)", m[2])
			}
		}
	}
}

// rpmPaths lists the files in an .rpm's payload.
func rpmPaths(t *testing.T, rpm string) []string {
	t.Helper()
	rpm2cpio := testpeer.Require(t, "rpm2cpio", "rpm2cpio")
	cpio := testpeer.Require(t, "cpio", "cpio")
	out, err := exec.Command("sh", "-c", `"$0" "$1" | "$2" -t --quiet`, rpm2cpio, rpm, cpio).Output()
	if err != nil {
		t.Fatalf("listing %s: %v", rpm, err)
	}
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "/") {
			paths = append(paths, l)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no files in %s", rpm)
	}
	return paths
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// unpackDeb extracts the .deb into a new directory, as dpkg would lay it out.
func unpackDeb(t *testing.T, deb string) string {
	t.Helper()
	dpkgDeb := testpeer.Require(t, "dpkg-deb", "dpkg")
	root := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	return root
}

func TestPackageContents(t *testing.T) {
	p := packages(t)
	dpkgDeb := testpeer.Require(t, "dpkg-deb", "dpkg")
	out, err := exec.Command(dpkgDeb, "-c", p.oldDeb).Output()
	if err != nil {
		t.Fatal(err)
	}
	listing := string(out)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/dirigent\n",
		"-rw-r--r-- root/root .* ./lib/systemd/system/dirigent.service\n",
		"-rw-r--r-- root/root .* ./usr/lib/sysusers.d/dirigent.conf\n",
		"-rw-r--r-- root/root .* ./usr/lib/sysctl.d/30-dirigent.conf\n",
		"-rw-r----- root/dirigent .* ./etc/dirigent/dirigent.toml\n",
		" ./usr/share/man/man8/dirigent.8.gz\n",
		" ./usr/share/doc/dirigent/copyright\n",
		" ./usr/share/doc/dirigent/changelog.Debian.gz\n",
		" ./usr/share/doc/dirigent/README.md\n",
		" ./usr/share/doc/dirigent/monitoring/dirigent-alerts.yml\n",
		" ./usr/share/doc/dirigent/monitoring/dirigent-dashboard.json\n",
		"drwxr-xr-x root/root .* ./usr/share/dirigent/sounds/\n",
	} {
		if !regexp.MustCompile(want).MatchString(listing) {
			t.Errorf("the .deb lacks %q; it has:\n%s", want, listing)
		}
	}
	// Whatever sounds the SIP channel has are shipped.
	sounds, _ := filepath.Glob(filepath.Join(repoRoot, "sip", "sounds", "*.wav"))
	for _, s := range sounds {
		if !strings.Contains(listing, " ./usr/share/dirigent/sounds/"+filepath.Base(s)+"\n") {
			t.Errorf("the .deb lacks the sound %s", filepath.Base(s))
		}
	}
	out, err = exec.Command(dpkgDeb, "-f", p.oldDeb, "Version").Output()
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(out))
	conffiles, err := exec.Command(dpkgDeb, "--ctrl-tarfile", p.oldDeb).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(conffiles, []byte("/etc/dirigent/dirigent.toml\n")) {
		t.Errorf("/etc/dirigent/dirigent.toml is not a conffile")
	}

	root := unpackDeb(t, p.oldDeb)
	// The installed configuration names the unit's directories, so admin
	// commands given --config /etc/dirigent/dirigent.toml find the daemon.
	conf, err := os.ReadFile(filepath.Join(root, "etc", "dirigent", "dirigent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ndir = \"/var/lib/dirigent\"\n", "\nsocket = \"/run/dirigent/control.sock\"\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("the installed configuration lacks %q", strings.TrimSpace(want))
		}
	}

	// The packaged binary says the version the package manager shows.
	out, err = exec.Command(filepath.Join(root, "usr", "bin", "dirigent"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	upstream := version[:strings.LastIndex(version, "-")]
	if !strings.HasPrefix(string(out), "dirigent "+upstream+" ") {
		t.Errorf("dirigent version = %q, want the package's version %s", out, upstream)
	}

	if rpmCmd, err := exec.LookPath("rpm"); err == nil {
		out, err := exec.Command(rpmCmd, "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]", p.oldRPM).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"-rw-r----- root:dirigent cn /etc/dirigent/dirigent.toml",
			"-rwxr-xr-x root:root  /usr/bin/dirigent",
			"-rw-r--r-- root:root  /usr/lib/systemd/system/dirigent.service",
			"-rw-r--r-- root:root  /usr/lib/sysctl.d/30-dirigent.conf",
			"-rw-r--r-- root:root d /usr/share/man/man8/dirigent.8.gz",
			"-rw-r--r-- root:root l /usr/share/licenses/dirigent/copyright",
		} {
			if !strings.Contains(string(out), want+"\n") {
				t.Errorf("the .rpm lacks %q; it has:\n%s", want, out)
			}
		}
	} else {
		testpeer.Require(t, "rpm", "rpm")
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit as the .deb
// installs it, with the packaged binary, in a root that has systemd's own
// units: every warning (an unknown key, a bad value, a missing command)
// is a failure.
func TestUnitVerifies(t *testing.T) {
	analyze := testpeer.Require(t, "systemd-analyze", "systemd")
	root := unpackDeb(t, packages(t).oldDeb)
	units := filepath.Join(root, "lib", "systemd", "system")
	hostUnits, _ := filepath.Glob("/lib/systemd/system/*.target")
	more, _ := filepath.Glob("/lib/systemd/system/*.slice")
	hostUnits = append(hostUnits, more...)
	if len(hostUnits) == 0 {
		t.Fatal("no systemd units in /lib/systemd/system")
	}
	for _, u := range hostUnits {
		if l, err := os.Readlink(u); err == nil {
			os.Symlink(l, filepath.Join(units, filepath.Base(u)))
			continue
		}
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(units, filepath.Base(u)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(kill)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "bin", "kill"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", "--root="+root, "dirigent.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for dirigent.service: ([0-9.]+)`)

// TestUnitSandbox keeps the unit's exposure, as systemd-analyze security
// rates it, at or below 2.0 ("OK"; 10 is an unsandboxed service). What
// is left open is explained in the unit (network, CAP_NET_BIND_SERVICE,
// /proc/stat for the process metrics).
func TestUnitSandbox(t *testing.T) {
	analyze := testpeer.Require(t, "systemd-analyze", "systemd")
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager",
		filepath.Join(repoRoot, "systemd", "dirigent.service")).CombinedOutput()
	m := exposure.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	if level > 2.0 {
		t.Errorf("exposure %.1f, want at most 2.0:\n%s", level, out)
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot, "systemd", "dirigent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "ExecStartPre=-/usr/bin/dirigent check-config /etc/dirigent/dirigent.toml",
		"ExecReload=/bin/kill -HUP $MAINPID", "User=dirigent", "Group=dirigent", "StateDirectory=dirigent",
		"ConfigurationDirectory=dirigent", "RuntimeDirectory=dirigent", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE\n", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"SystemCallFilter=@system-service", "RestartPreventExitStatus=2",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}

// TestUnitUnderSystemd runs scripts/systemd-test.sh: the .deb installed,
// started, reloaded, upgraded and purged under systemd 252 booted in a
// minimal Debian 12 with systemd-nspawn, the sandbox and the watchdog
// checked on the running daemon.
func TestUnitUnderSystemd(t *testing.T) {
	testpeer.RequireRoot(t, "booting systemd in a container (systemd-nspawn)")
	// The two root tests share nothing but the packages and mostly wait
	// for debootstrap's downloads and dpkg: they run side by side.
	t.Parallel()
	testpeer.Require(t, "debootstrap", "debootstrap")
	testpeer.Require(t, "systemd-nspawn", "systemd-container")
	p := packages(t)
	cmd := exec.Command("bash", "scripts/systemd-test.sh", p.oldDeb, p.newDeb)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	steps := regexp.MustCompile(`(?m)^=== (.*)$`).FindAllStringSubmatch(string(out), -1)
	var names []string
	for _, s := range steps {
		names = append(names, s[1])
	}
	if err != nil || len(names) == 0 || names[len(names)-1] != "systemd test passed" {
		t.Fatalf("scripts/systemd-test.sh: %v\n%s", err, out)
	}
	t.Logf("systemd test steps:\n%s", strings.Join(names, "\n"))
}

// TestInstallInDebianRoot runs scripts/install-test.sh: the packages
// installed, configured, run, reloaded, backed up and restored, upgraded,
// removed and purged in a debootstrapped Debian 12 root.
func TestInstallInDebianRoot(t *testing.T) {
	testpeer.RequireRoot(t, "the install test (chroot, dpkg into a root, namespaces)")
	t.Parallel()
	for _, peer := range [][2]string{
		{"debootstrap", "debootstrap"}, {"curl", "curl"}, {"swaks", "swaks"}, {"promtool", "prometheus"},
		{"rpm", "rpm"}, {"unshare", "util-linux"}, {"chroot", "coreutils"}, {"ip", "iproute2"},
	} {
		testpeer.Require(t, peer[0], peer[1])
	}
	p := packages(t)
	cmd := exec.Command("bash", "scripts/install-test.sh", p.oldDeb, p.newDeb, p.oldRPM, p.newRPM)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/install-test.sh: %v\n%s", err, out)
	}
	steps := regexp.MustCompile(`(?m)^=== (.*)$`).FindAllStringSubmatch(string(out), -1)
	var names []string
	for _, s := range steps {
		names = append(names, s[1])
	}
	t.Logf("install test steps:\n%s", strings.Join(names, "\n"))
	if len(names) == 0 || names[len(names)-1] != "install test passed" {
		t.Fatalf("the install test did not reach its end:\n%s", out)
	}
	// The README's operation section is what the script follows.
	for _, want := range []string{"Install", "Configure", "Monitor", "Back up", "Reload", "Restore", "Upgrade"} {
		found := false
		for _, n := range names {
			found = found || strings.HasPrefix(n, "README, "+want)
		}
		if !found {
			t.Errorf("the install test has no step for the README's %q", want)
		}
	}
}
