package outbound

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// The postmaster's view of the spool (`mailmig queue`, like Postfix's
// mailq, postqueue -f and postsuper -d) and the figures the metrics read.

// ErrNoEntry is returned for a queue id the spool does not hold.
var ErrNoEntry = errors.New("outbound: no such queue entry")

// Entry describes one queued message.
type Entry struct {
	ID          string    `json:"id"`
	From        string    `json:"from"` // "" = a bounce (null sender)
	To          []string  `json:"to"`   // recipients still pending
	Size        int64     `json:"size"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
}

// List returns the queued messages, oldest first. Unreadable entries are
// listed with their id and the error as LastError.
func (q *Queue) List() ([]Entry, error) {
	if err := q.init(); err != nil {
		return nil, err
	}
	ids, _, err := q.listIDs()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(ids))
	for _, id := range ids {
		it, err := q.loadMeta(id)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // delivered meanwhile
			}
			out = append(out, Entry{ID: id, LastError: err.Error()})
			continue
		}
		e := Entry{ID: id, From: it.From, To: it.Pending, Created: it.Created, Attempts: it.Attempts, NextAttempt: it.NextAttempt}
		if fi, err := os.Stat(q.msgPath(id)); err == nil {
			e.Size = fi.Size()
		}
		if it.Last != nil {
			e.LastError = formatReply(*it.Last)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Oldest returns the number of queued messages and the creation time of
// the oldest (zero when empty), for the metrics.
func (q *Queue) Oldest() (int, time.Time, error) {
	es, err := q.List()
	if err != nil || len(es) == 0 {
		return 0, time.Time{}, err
	}
	return len(es), es[0].Created, nil
}

// validID refuses ids that are not a plain file name base.
func validID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return fmt.Errorf("outbound: invalid queue id %q", id)
	}
	return nil
}

// Delete removes a queued message without delivering or bouncing it
// (postsuper -d). The envelope goes first, as when an entry is finished.
func (q *Queue) Delete(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := q.init(); err != nil {
		return err
	}
	if _, err := os.Stat(q.metaPath(id)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNoEntry, id)
	}
	if err := q.remove(id); err != nil {
		return err
	}
	q.schedDel(id)
	q.log().Info("outbound: deleted by the postmaster", "id", id)
	return syncDir(q.queueDir())
}

// Flush makes every queued message due now and wakes the runner
// (postqueue -f). It returns how many entries it made due. The attempts
// happen in the process that runs the queue (mailmig serve).
func (q *Queue) Flush() (int, error) {
	if err := q.init(); err != nil {
		return 0, err
	}
	ids, _, err := q.listIDs()
	if err != nil {
		return 0, err
	}
	now := q.now()
	n := 0
	for _, id := range ids {
		it, err := q.loadMeta(id)
		if err != nil {
			continue // delivered meanwhile, or unreadable (List shows it)
		}
		if it.NextAttempt.After(now) {
			it.NextAttempt = now
			if err := q.saveMeta(it); err != nil {
				return n, err
			}
		}
		q.schedDel(id)
		n++
	}
	q.Kick()
	return n, nil
}
