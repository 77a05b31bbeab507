package main

import "context"

// startManageSieve is a placeholder until the managesieve server lands: it starts nothing.
func startManageSieve(ctx context.Context, e *env) (func(context.Context) error, error) {
	if len(e.cfg.ManageSieve.Listeners) > 0 {
		e.log.Warn("managesieve is not built into this mailmig yet; its listeners are not started")
	}
	return nil, nil
}
