// Package router is dirigent's universal queue: one queue across calls,
// mails and messages that hands every task to the best-suited free agent.
//
// It is pure logic: no network, an injectable clock, and every transition
// of a task, an offer or an agent's presence written as an Event to a
// Journal, from which the statistics can be recomputed. The store keeps the
// journal; router reaches it only through the Journal interface.
//
// Matching is indexed, not a scan of agents × tasks. Agents with the same
// skills and proficiencies form an agent class, and tasks of one queue,
// widening step and channel form a task class; for each pair the
// compatibility is computed once. Each agent class keeps its free agents in
// heaps per channel (by idle time and by load) and each task class keeps its
// pending tasks in a heap by priority and arrival. A new task then looks at
// the heads of the compatible agent classes, and a freed agent at the heads
// of the compatible task classes.
//
// router imports no other dirigent package.
package router
