package migrate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"mailmig/state"
)

// Pass sums up one pass over the queue.
type Pass struct {
	Worked  int // users the pass looked at
	Waiting int // in confirm, waiting for a reply or the clock
	Done    int // reached done in this pass
	Failed  int // step failed (retried later) or needs attention
	Errors  []error
}

func workable(s state.State) bool {
	switch s {
	case state.Queued, state.Dual, state.Copying, state.Confirm, state.Cutover:
		return true
	}
	return false
}

// RunOnce makes one pass: every workable user whose lease is free is
// advanced as far as it can go now, by up to workers users at once.
func (r *Runner) RunOnce(ctx context.Context, workers int) (*Pass, error) {
	if workers < 1 {
		workers = 1
	}
	if err := r.ReleaseDead(ctx); err != nil {
		return nil, err
	}
	list, err := r.DB.List(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	users := make(chan string)
	var mu sync.Mutex
	pass := &Pass{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("%s/w%d", r.workerBase(), w)
			for u := range users {
				st, err := r.Advance(ctx, u, id)
				mu.Lock()
				pass.Worked++
				switch {
				case errors.Is(err, state.ErrLeased):
					pass.Worked--
				case err != nil:
					pass.Failed++
					pass.Errors = append(pass.Errors, err)
				case st == state.Done:
					pass.Done++
				case st == state.Confirm:
					pass.Waiting++
				case st == state.NeedsAttention:
					pass.Failed++
				}
				mu.Unlock()
			}
		}()
	}
	for _, e := range list {
		if !workable(e.State) {
			continue
		}
		if e.LeaseOwner != "" && e.LeaseUntil.After(now) {
			continue
		}
		select {
		case users <- e.User:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(users)
	wg.Wait()
	return pass, ctx.Err()
}

// Run passes over the queue every poll interval until ctx ends (the
// daemon). Errors of single users are logged and retried next pass.
func (r *Runner) Run(ctx context.Context, workers int, poll time.Duration) error {
	if poll <= 0 {
		poll = 30 * time.Second
	}
	for {
		pass, err := r.RunOnce(ctx, workers)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.log().Error("queue pass", "err", err)
		} else if pass.Worked > pass.Waiting {
			// Only a pass that moved someone is news; users waiting for a
			// reply are visited every poll (issue 9 item 11).
			r.log().Info("queue pass", "users", pass.Worked, "done", pass.Done, "waiting", pass.Waiting, "failed", pass.Failed)
		} else if pass.Worked > 0 {
			r.log().Debug("queue pass", "users", pass.Worked, "waiting", pass.Waiting)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
