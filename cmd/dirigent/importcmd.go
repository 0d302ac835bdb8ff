package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"dirigent/journey"
)

// importCustomers sends a CRM export to the running daemon, which owns the
// store, and prints what it did.
func importCustomers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, target := controlFlags("import customers", stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("usage: dirigent import customers [--config FILE | --socket PATH] FILE.csv")}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return usageError{err}
	}
	defer f.Close()
	resp, err := target.do(ctx, http.MethodPost, "/import/customers", f)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer resp.Body.Close()
	var res journey.ImportResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return fmt.Errorf("import: reading the daemon's answer: %w", err)
	}
	fmt.Fprintf(stdout, "import: %d rows, %d customers created, %d updated, %d problems\n", res.Rows, res.Created, res.Updated, len(res.Problems))
	for _, p := range res.Problems {
		fmt.Fprintln(stdout, "  "+p)
	}
	return nil
}
