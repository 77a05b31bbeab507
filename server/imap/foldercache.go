package imap

import "time"

// evictLeastUsed drops the least recently used entries of m, a
// process-wide cache of folders keyed by directory, until the messages
// they hold (size) are at most max. The caller holds m's lock.
func evictLeastUsed[T any](m map[string]T, max int, size func(T) int, used func(T) time.Time) {
	total := 0
	for _, o := range m {
		total += size(o)
	}
	for total > max && len(m) > 0 {
		var oldest string
		var t time.Time
		for d, o := range m {
			if oldest == "" || used(o).Before(t) {
				oldest, t = d, used(o)
			}
		}
		total -= size(m[oldest])
		delete(m, oldest)
	}
}
