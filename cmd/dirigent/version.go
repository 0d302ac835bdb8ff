package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version string

// buildInfo returns the version and VCS revision, falling back to what the
// Go toolchain recorded when no version was stamped in.
func buildInfo() (ver, revision string) {
	ver, revision = version, "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if ver == "" {
			ver = "unknown"
		}
		return ver, revision
	}
	if ver == "" {
		ver = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return ver, revision
}

func versionString() string {
	ver, rev := buildInfo()
	return fmt.Sprintf("dirigent %s (revision %s, %s %s/%s)", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newBuildInfoCollector() prometheus.Collector {
	ver, rev := buildInfo()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace:   "dirigent",
		Name:        "build_info",
		Help:        "Always 1; the labels say which build of dirigent is running.",
		ConstLabels: prometheus.Labels{"version": ver, "revision": rev, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}
