package main

import "context"

// startLMTP is a placeholder until the lmtp server lands: it starts nothing.
func startLMTP(ctx context.Context, e *env) (func(context.Context) error, error) {
	if len(e.cfg.LMTP.Listeners) > 0 {
		e.log.Warn("lmtp is not built into this mailmig yet; its listeners are not started")
	}
	return nil, nil
}
