package main

import "mailmig/server/delivery"

// newDeliverer is a placeholder until the delivery wiring lands.
func newDeliverer(e *env) (*delivery.Deliverer, error) {
	return &delivery.Deliverer{MaildirFor: e.maildirFor, Logger: e.log, Hostname: e.cfg.Server.Hostname}, nil
}
