// Package store owns everything dirigent keeps on disk, in one bbolt file:
// customers and their identities, contacts, conversations, touchpoints,
// and the router's event journal. It is the only package that imports
// bbolt, and it imports no other dirigent package.
//
// Writes go through a group committer: each caller waits until the
// transaction holding its change is committed and fsynced, so nothing is
// acknowledged before it is durable, while concurrent callers share one
// fsync. A customer's journey is one ordered prefix scan: contacts and
// touchpoints are keyed customer | time | kind | id.
package store
