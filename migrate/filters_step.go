package migrate

import (
	"context"
	"fmt"
	"strings"

	"mailmig/migrate/paths"
	"mailmig/state"
)

// FilterInstaller converts a user's old filters (procmail, .forward,
// vacation) into a Sieve script in the new store during copying
// (migrate/filters.Installer). It must be idempotent.
type FilterInstaller interface {
	Install(ctx context.Context, e *state.Entry, p *paths.User, rep *Report) (*FiltersReport, error)
}

// Event kinds of the filter step.
const (
	eventFilters            = "filters"
	eventFilterNotConverted = "filter-not-converted"
)

// installFilters runs the filter step and records it: the report goes
// into rep, an event says what was written, and one event per rule that
// was not converted. On failure the step fails (and is retried).
func (r *Runner) installFilters(ctx context.Context, e *state.Entry, p *paths.User, rep *Report) (stepResult, error) {
	if r.Filters == nil {
		return stepMoved, nil
	}
	fr, err := r.Filters.Install(ctx, e, p, rep)
	if err != nil {
		res, ferr := r.fail(ctx, e, "convert filters", err)
		if ferr == nil {
			ferr = err
		}
		return res, ferr
	}
	rep.Filters = fr
	if fr == nil || fr.Script == "" {
		return stepMoved, nil
	}
	// A retried step logs once: skip what the log already holds.
	seen := map[string]bool{}
	if evs, err := r.DB.Events(ctx, e.User); err == nil {
		for _, ev := range evs {
			seen[ev.Kind+"\x00"+ev.Detail] = true
		}
	}
	logOnce := func(kind, detail string) error {
		if seen[kind+"\x00"+detail] {
			return nil
		}
		return r.DB.Log(ctx, e.User, kind, r.workerBase(), detail)
	}
	msg := fmt.Sprintf("converted %s into %s", strings.Join(fr.Sources, ", "), fr.Script)
	if fr.Activated {
		msg += " (active)"
	} else {
		msg += " (not activated: " + fr.NotActivated + ")"
	}
	if len(fr.Problems) > 0 {
		msg += fmt.Sprintf("; %d rule(s) not converted", len(fr.Problems))
	}
	if err := logOnce(eventFilters, msg); err != nil {
		return stepFailed, err
	}
	for _, pr := range fr.Problems {
		if err := logOnce(eventFilterNotConverted, pr); err != nil {
			return stepFailed, err
		}
	}
	if len(fr.Problems) > 0 {
		r.log().Warn("filter rules not converted", "user", e.User, "rules", len(fr.Problems))
	}
	return stepMoved, nil
}
