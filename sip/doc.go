// Package sip is the voice channel: a SIP user agent on sipgo that is the
// registrar for agents' phones, answers customers' calls from the site's
// trunks, plays hold audio and IVR prompts, rings agents for the router's
// offers and bridges the two call legs with its own small RTP relay.
//
// sip imports router, journey and store; it never imports another
// channel (mail, desk).
package sip
