// Package mail is the e-mail channel: an SMTP server for the site's
// support addresses that acknowledges a message only after its bytes are
// fsynced in the store, and the processing that turns stored messages
// into contacts, conversations and router tasks.
//
// mail imports router, journey and store; it never imports another
// channel (sip, desk).
package mail
