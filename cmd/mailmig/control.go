package main

import "mailmig/server/delivery"

// deliveryEnvelope is the envelope of a mail from the postmaster to a
// local user (the migration's notices).
func deliveryEnvelope(from, user, domain string) delivery.Envelope {
	return delivery.Envelope{From: from, To: user + "@" + domain, User: user}
}
