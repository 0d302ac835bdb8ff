// Package desk owns dirigent's HTTP side: the public server with /metrics,
// /healthz and /readyz (the agent desktop and its JSON API will live here
// too), and the local control socket that admin commands such as
// `dirigent backup` talk to.
//
// desk may import router, journey and store; it never imports another
// channel (sip, mail).
package desk
