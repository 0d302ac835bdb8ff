// Package journey turns contacts into knowledge about customers: who is
// this (identification from a phone number, an e-mail address or a SIP
// URI, normalised, one identity → one customer), customer import from a
// CRM's CSV export, and the customer's journey across channels.
//
// journey imports store; it never imports a channel (sip, mail, desk).
package journey
