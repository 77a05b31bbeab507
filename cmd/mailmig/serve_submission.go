package main

import "context"

// startSubmission is a placeholder until the submission server lands: it starts nothing.
func startSubmission(ctx context.Context, e *env) (func(context.Context) error, error) {
	if len(e.cfg.Submission.Listeners) > 0 {
		e.log.Warn("submission is not built into this mailmig yet; its listeners are not started")
	}
	return nil, nil
}
