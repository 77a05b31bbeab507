//go:build race

package imap

// raceEnabled: with the race detector sync.Pool drops a quarter of what
// is put back, so TestSortThreadMemory allows more garbage there.
const raceEnabled = true
