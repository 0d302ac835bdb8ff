package main

import (
	"errors"
	"flag"
	"io"
)

// checkConfig prints nothing for a good file; for a bad one, every problem
// on its own line (by way of exitCode) and exit status 2.
func checkConfig(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("usage: dirigent check-config FILE")}
	}
	if _, err := loadToServe(fs.Arg(0)); err != nil {
		return usageError{err}
	}
	return nil
}
