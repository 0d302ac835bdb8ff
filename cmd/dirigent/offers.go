package main

import "dirigent/router"

// offerSinks hands each of the router's offers and revocations to every
// channel that acts on them: sip rings the agent's phone, the desk shows
// the offer. Sinks are added while the daemon is built, before the router
// runs, and never after.
type offerSinks struct {
	offer  []func(router.Offer)
	revoke []func(router.Offer)
}

func (s *offerSinks) add(onOffer, onRevoke func(router.Offer)) {
	s.offer = append(s.offer, onOffer)
	s.revoke = append(s.revoke, onRevoke)
}

func (s *offerSinks) onOffer(o router.Offer) {
	for _, f := range s.offer {
		f(o)
	}
}

func (s *offerSinks) onRevoke(o router.Offer) {
	for _, f := range s.revoke {
		f(o)
	}
}
