//go:build race

package web

// raceEnabled: the race detector slows code 5-20×, so time bounds are
// checked only in builds without it (`make bench-web`).
const raceEnabled = true
