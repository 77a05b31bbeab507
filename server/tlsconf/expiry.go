package tlsconf

import "time"

// NotAfter returns the expiry of the certificate in use (the metrics
// report it), false when it cannot be told.
func (r *Reloader) NotAfter() (time.Time, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.cert == nil || r.cert.Leaf == nil {
		return time.Time{}, false
	}
	return r.cert.Leaf.NotAfter, true
}
