//go:build race

package sieve

// raceEnabled: the race detector slows code 5-20x, so the time bound of
// TestScript200RulesBudget is checked only in builds without it.
const raceEnabled = true
