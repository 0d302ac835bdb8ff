// Package desk owns dirigent's HTTP side: the agent desktop and the
// supervisor wallboard (pages embedded from web/, their JSON API under
// /api/desk with logins, sessions and live server-sent events, described
// in openapi.yaml), the API for other systems (bearer tokens), /metrics,
// /healthz and /readyz, and the local control socket that admin commands
// such as `dirigent backup` and `dirigent passwd` talk to.
//
// desk may import router, journey, store and internal/clientaddr; it never imports another
// channel (sip, mail): replies go out through the Mailer interface.
package desk
