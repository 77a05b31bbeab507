package imap

import "time"

// WITHIN (RFC 5032 §3): the search keys OLDER n and YOUNGER n compare a
// message's internal date with the time the command arrived (k.date):
// OLDER matches messages older than n seconds, YOUNGER those no older
// than n seconds. An interval is nz-number (§4), so 0 is a syntax error.
func (k *searchKey) within(internal time.Time) bool {
	age := k.date.Sub(internal)
	limit := time.Duration(k.n) * time.Second
	if k.op == "OLDER" {
		return age > limit
	}
	return age <= limit
}
