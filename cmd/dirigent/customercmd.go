package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"dirigent/store"
)

// privacy exports from the store and erases through the journal, which
// also forgets the customer's open tasks.
type privacy struct {
	*store.Store
	*storeJournal
}

// EraseCustomer resolves the ambiguity of the two embedded types.
func (p privacy) EraseCustomer(ctx context.Context, id uint64) (store.ErasedCustomer, error) {
	return p.storeJournal.EraseCustomer(ctx, id)
}

const customerUsage = "usage: dirigent customer export|erase [--config FILE | --socket PATH] CUSTOMER-ID"

// customer exports (to stdout, JSON) or erases one customer through the
// running daemon: GDPR access and erasure requests.
func customer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "export" && args[0] != "erase" {
		return usageError{errors.New(customerUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("customer "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "find the control socket in this config `file` (default: the embedded default)")
	socket := fs.String("socket", "", "control socket `path` (overrides --config)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New(customerUsage)}
	}
	id, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil || id == 0 {
		return usageError{fmt.Errorf("customer id %q: want a positive number", fs.Arg(0))}
	}
	method, path := http.MethodGet, fmt.Sprintf("/customers/%d/export", id)
	if verb == "erase" {
		method, path = http.MethodDelete, fmt.Sprintf("/customers/%d", id)
	}
	resp, err := control(ctx, *cfgPath, *socket, method, path, nil)
	if err != nil {
		return fmt.Errorf("customer %s: %w", verb, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("customer %s: %w", verb, err)
	}
	if verb == "erase" {
		fmt.Fprintf(stderr, "customer %d erased\n", id)
	}
	return nil
}
