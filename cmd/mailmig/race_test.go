//go:build race

package main

// raceEnabled: the race detector slows code 5-20×, so time bounds (login
// latency during a spray) are asserted only in builds without it; `make
// test` runs those tests again without -race, one package at a time.
const raceEnabled = true
