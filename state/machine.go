package state

import (
	"errors"
	"fmt"
)

// State is where a user is in the migration.
type State string

// The states of a migration, in order, plus needs-attention.
const (
	Queued         State = "queued"
	Dual           State = "dual"
	Copying        State = "copying"
	Confirm        State = "confirm"
	Cutover        State = "cutover"
	Done           State = "done"
	NeedsAttention State = "needs-attention"
)

// States lists every state in the order a migration passes them.
var States = []State{Queued, Dual, Copying, Confirm, Cutover, Done, NeedsAttention}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// allowed is the state machine: from → the states it may move to.
//
//	queued → dual → copying → confirm → cutover → done
//
// Any state before done may stop in needs-attention; from there the
// postmaster (or a retry) resumes at the step that failed or an earlier
// one, never skipping a step that was not done.
var allowed = map[State][]State{
	Queued:         {Dual, NeedsAttention},
	Dual:           {Copying, NeedsAttention},
	Copying:        {Confirm, NeedsAttention},
	Confirm:        {Cutover, NeedsAttention},
	Cutover:        {Done, NeedsAttention},
	Done:           {},
	NeedsAttention: {Queued, Dual, Copying, Confirm, Cutover},
}

// ErrTransition is returned for a transition the state machine forbids.
var ErrTransition = errors.New("state: transition not allowed")

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to State) bool {
	for _, s := range allowed[from] {
		if s == to {
			return true
		}
	}
	return false
}

func checkTransition(user string, from, to State) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s from %s to %s", ErrTransition, user, from, to)
	}
	return nil
}
