package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"dirigent/chat"
	"dirigent/router"
	"dirigent/store"
)

// customerAdmin is what the control socket does to customers: the store's
// export and merges, and erasure through the journal, which also forgets
// the customer's open tasks.
type customerAdmin struct {
	*store.Store
	*storeJournal
	router *router.Router
	chat   *chat.Channel // nil when off
	desk   interface{ ForgetTasks(ids []uint64) }
}

// EraseCustomer erases through the journal, then lets go of what the
// running daemon still holds of the customer: their open chats, and
// their open tasks (router.EraseCustomer: canceled as "erased" whatever
// their state, so they leave the queue and the agents' desks; a call in
// progress goes on until it ends, off the desk; and none of theirs is
// taken any more). The count of open tasks is of both: a task created
// moments before is in the router before its creation reaches the
// journal's index.
func (a customerAdmin) EraseCustomer(ctx context.Context, id uint64) (store.ErasedCustomer, error) {
	n, indexed, err := a.storeJournal.EraseCustomer(ctx, id)
	if err != nil {
		return n, err
	}
	tasks := indexed
	// With the customers merged into this one earlier: their chats and
	// tasks still name them.
	for _, c := range append([]uint64{id}, n.Merged...) {
		if a.chat != nil {
			a.chat.ForgetCustomer(c)
		}
		tasks = append(tasks, a.router.EraseCustomer(c)...)
	}
	slices.Sort(tasks)
	tasks = slices.Compact(tasks)
	// Calls in progress among them are the agents' until they hang up,
	// but the customer's card leaves their screens now.
	a.desk.ForgetTasks(tasks)
	n.OpenTasks = max(n.OpenTasks, len(tasks))
	return n, nil
}

// MergeCustomers merges in the store, then has the router rank the
// merged-away customer's open tasks, and any it gets for them later, at
// the kept customer's value tier. The tasks keep naming the merged-away
// customer, as the open-task index does: erasure follows merges, an
// unmerge needs to move nothing back. (A start tells the router of the
// merges in force: tellMerges.)
func (a customerAdmin) MergeCustomers(ctx context.Context, keep, other uint64, at time.Time) (*store.Merge, error) {
	rec, err := a.Store.MergeCustomers(ctx, keep, other, at)
	if err != nil {
		return nil, err
	}
	// Not found: erased meanwhile, and with them, as merged, these tasks.
	if c, err := a.Store.Customer(keep); err == nil {
		a.router.MergeCustomer(other, keep, c.ValueTier)
	}
	return rec, nil
}

// UnmergeCustomers undoes a merge in the store, then has the router rank
// the two customers' tasks at their own value tiers again.
func (a customerAdmin) UnmergeCustomers(ctx context.Context, mergeID uint64, at time.Time) (*store.Merge, error) {
	rec, err := a.Store.UnmergeCustomers(ctx, mergeID, at)
	if err != nil {
		return nil, err
	}
	a.router.UnmergeCustomer(rec.Merged.ID, rec.Merged.ValueTier, rec.Keep, keptTier(a.Store, rec))
	return rec, nil
}

// keptTier is the value tier of the customer a merge kept, now; as it
// was before the merge when it cannot be read.
func keptTier(s *store.Store, m *store.Merge) int {
	if c, err := s.Customer(m.Keep); err == nil {
		return c.ValueTier
	}
	return m.KeepBefore.ValueTier
}

// tellMerges tells the router of the merges in force, oldest first, each
// at the kept customer's value tier now: open tasks of merged-away
// customers, queued again at the start, rank as they did before it.
func tellMerges(s *store.Store, r *router.Router) error {
	merges, err := s.ActiveMerges()
	if err != nil {
		return err
	}
	for _, m := range merges {
		r.MergeCustomer(m.Merged.ID, m.Keep, keptTier(s, &m))
	}
	return nil
}

const customerUsage = `usage: dirigent customer VERB [--config FILE | --socket PATH] ARGS
  export ID          everything stored about the customer, as JSON
  erase ID           erase the customer completely
  suggest ID         customers that may be the same person, with reasons
  merge KEEP OTHER   make OTHER part of KEEP (prints the merge, its id undoes it)
  unmerge MERGE-ID   undo a merge
  unlink ID IDENTITY take an identity (email:joe@example.com) from the customer:
                     later contacts from it are someone else's
  link ID IDENTITY   give the customer an identity nobody has (one taken by
                     mistake, which CRM imports then skip)`

// customerVerbs maps each verb to its method, path and number of ids;
// identity: an identity follows them, the path's last segment.
var customerVerbs = map[string]struct {
	method   string
	path     func(ids []uint64) string
	ids      int
	identity bool
}{
	"export":  {http.MethodGet, func(ids []uint64) string { return fmt.Sprintf("/customers/%d/export", ids[0]) }, 1, false},
	"erase":   {http.MethodDelete, func(ids []uint64) string { return fmt.Sprintf("/customers/%d", ids[0]) }, 1, false},
	"suggest": {http.MethodGet, func(ids []uint64) string { return fmt.Sprintf("/customers/%d/merge-suggestions", ids[0]) }, 1, false},
	"merge":   {http.MethodPost, func(ids []uint64) string { return fmt.Sprintf("/customers/%d/merge/%d", ids[0], ids[1]) }, 2, false},
	"unmerge": {http.MethodPost, func(ids []uint64) string { return fmt.Sprintf("/merges/%d/undo", ids[0]) }, 1, false},
	"unlink":  {http.MethodDelete, func(ids []uint64) string { return fmt.Sprintf("/customers/%d/identities", ids[0]) }, 1, true},
	"link":    {http.MethodPost, func(ids []uint64) string { return fmt.Sprintf("/customers/%d/identities", ids[0]) }, 1, true},
}

// customer runs an admin action on customers through the running daemon
// and prints its JSON answer: GDPR access and erasure, merges.
func customer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(customerUsage)}
	}
	v, ok := customerVerbs[args[0]]
	if !ok {
		return usageError{errors.New(customerUsage)}
	}
	verb := args[0]
	fs, target := controlFlags("customer "+verb, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err}
	}
	n := v.ids
	if v.identity {
		n++
	}
	if fs.NArg() != n {
		return usageError{errors.New(customerUsage)}
	}
	ids := make([]uint64, v.ids)
	for i := range ids {
		id, err := strconv.ParseUint(fs.Arg(i), 10, 64)
		if err != nil || id == 0 {
			return usageError{fmt.Errorf("id %q: want a positive number", fs.Arg(i))}
		}
		ids[i] = id
	}
	path := v.path(ids)
	if v.identity {
		path += "/" + url.PathEscape(fs.Arg(v.ids))
	}
	resp, err := target.do(ctx, v.method, path, nil)
	if err != nil {
		return fmt.Errorf("customer %s: %w", verb, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("customer %s: %w", verb, err)
	}
	if verb == "erase" {
		fmt.Fprintf(stderr, "customer %d erased\n", ids[0])
	}
	return nil
}
