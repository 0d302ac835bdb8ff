// Command dirigent is the contact-center daemon and its admin commands.
//
// main only parses the subcommand and maps errors to exit codes: 0 ok,
// 1 runtime failure, 2 usage or configuration error (the systemd unit sets
// RestartPreventExitStatus=2 so a broken config is not restarted in a loop).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `usage: dirigent <command> [flags]

commands:
  serve [--config FILE]          run the daemon (embedded default config without --config)
  check-config FILE              print every problem of FILE; exit 2 if there are any
  backup --out FILE [--config FILE | --socket PATH]
                                 copy the running daemon's store to FILE, consistently
  import customers [--config FILE | --socket PATH] FILE.csv
                                 create or update customers from a CRM export
  customer export|erase|suggest|merge|unmerge|unlink [--config FILE | --socket PATH] ID...
                                 GDPR export and erasure, merge suggestions, merge and
                                 undo, taking an identity from a customer (unlink ID IDENTITY)
  token new NAME                 make an API token for another system (web shop, survey tool)
  passwd [--config FILE | --socket PATH] USER
                                 set a desk login's password (read from the terminal or stdin)
  version                        print the version
`

// usageError marks errors that exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(usage)}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "check-config":
		return checkConfig(rest, stderr)
	case "backup":
		return backup(ctx, rest, stdout, stderr)
	case "import":
		if len(rest) == 0 || rest[0] != "customers" {
			return usageError{errors.New("usage: dirigent import customers [--config FILE | --socket PATH] FILE.csv")}
		}
		return importCustomers(ctx, rest[1:], stdout, stderr)
	case "customer":
		return customer(ctx, rest, stdout, stderr)
	case "token":
		return token(rest, stdout)
	case "passwd":
		return passwd(ctx, rest, os.Stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Errorf("unknown command %q\n%s", cmd, usage)}
	}
}
