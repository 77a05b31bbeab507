package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrNotQueued is returned for a user the queue does not hold.
var ErrNotQueued = errors.New("state: user not in the queue")

// ErrStateChanged is returned when a transition's expected current state
// is not the user's state any more (another process moved the user).
var ErrStateChanged = errors.New("state: user's state changed meanwhile")

// Entry is one user in the queue.
type Entry struct {
	User          string
	State         State
	CopyFolders   bool
	Deadline      time.Time // zero: none
	Language      string
	RequestedBy   string
	MigrationID   string
	EnqueuedAt    time.Time
	StateSince    time.Time
	Attempts      int
	LastError     string
	LeaseOwner    string
	LeaseUntil    time.Time
	Bytes         int64
	Messages      int64
	Folders       int64
	StopRequested bool
	StopReason    string
	AttentionFrom State // the state a user was in when it stopped in needs-attention
	Report        string
	Steps         map[State]time.Time
}

// Forced reports whether the user was enqueued after its deadline (the
// site moves such users without asking).
func (e *Entry) Forced() bool {
	return !e.Deadline.IsZero() && !e.EnqueuedAt.Before(e.Deadline)
}

// EnqueueOptions are the per-user options of enqueue.
type EnqueueOptions struct {
	CopyFolders bool
	Deadline    time.Time
	Language    string
	RequestedBy string
}

// Enqueue adds user to the queue. It reports false, and changes nothing,
// when the user is already queued.
func (d *DB) Enqueue(ctx context.Context, user string, o EnqueueOptions) (added bool, err error) {
	now := d.now()
	err = d.tx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM queue WHERE user = ?`, user).Scan(&cur)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id := make([]byte, 12)
		rand.Read(id)
		_, err = tx.ExecContext(ctx, `INSERT INTO queue (user, state, copy_folders, deadline, requested_by, enqueued_at, state_since, migration_id, language)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			user, Queued, o.CopyFolders, unix(o.Deadline), o.RequestedBy, unix(now), unix(now), hex.EncodeToString(id), o.Language)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO step_times (user, state, at) VALUES (?, ?, ?)`, user, Queued, unix(now)); err != nil {
			return err
		}
		added = true
		detail := fmt.Sprintf("folders=%v", o.CopyFolders)
		if !o.Deadline.IsZero() {
			detail += " deadline=" + o.Deadline.Format("2006-01-02")
		}
		return addEvent(ctx, tx, now, user, "enqueued", "", Queued, o.RequestedBy, detail)
	})
	if err != nil {
		return false, fmt.Errorf("state: enqueue %s: %w", user, err)
	}
	return added, nil
}

const entryCols = `user, state, copy_folders, deadline, requested_by, enqueued_at, state_since, attempts, last_error,
	lease_owner, lease_until, bytes, messages, folders, migration_id, language, stop_requested, stop_reason, attention_from, report`

type scanner interface{ Scan(...any) error }

func scanEntry(s scanner) (*Entry, error) {
	var e Entry
	var deadline, enq, since, leaseUntil int64
	var st, att string
	err := s.Scan(&e.User, &st, &e.CopyFolders, &deadline, &e.RequestedBy, &enq, &since, &e.Attempts, &e.LastError,
		&e.LeaseOwner, &leaseUntil, &e.Bytes, &e.Messages, &e.Folders, &e.MigrationID, &e.Language, &e.StopRequested, &e.StopReason, &att, &e.Report)
	if err != nil {
		return nil, err
	}
	e.State, e.AttentionFrom = State(st), State(att)
	e.Deadline, e.EnqueuedAt, e.StateSince, e.LeaseUntil = fromUnix(deadline), fromUnix(enq), fromUnix(since), fromUnix(leaseUntil)
	return &e, nil
}

// Get returns one user's entry, with its step times.
func (d *DB) Get(ctx context.Context, user string) (*Entry, error) {
	e, err := scanEntry(d.queryRow(ctx, `SELECT `+entryCols+` FROM queue WHERE user = ?`, user))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotQueued, user)
	}
	if err != nil {
		return nil, fmt.Errorf("state: get %s: %w", user, err)
	}
	e.Steps = map[State]time.Time{}
	rows, err := d.sql.QueryContext(ctx, `SELECT state, at FROM step_times WHERE user = ?`, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var at int64
		if err := rows.Scan(&s, &at); err != nil {
			return nil, err
		}
		e.Steps[State(s)] = fromUnix(at)
	}
	return e, rows.Err()
}

// List returns every queued user, in enqueue order.
func (d *DB) List(ctx context.Context) ([]*Entry, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT `+entryCols+` FROM queue ORDER BY enqueued_at, user`)
	if err != nil {
		return nil, fmt.Errorf("state: list: %w", err)
	}
	defer rows.Close()
	var out []*Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Transition moves user from → to, checked against the state machine and
// against the user's current state (which must be from), and records the
// event. Moving to needs-attention records reason as the last error.
func (d *DB) Transition(ctx context.Context, user string, from, to State, actor, reason string) error {
	if err := checkTransition(user, from, to); err != nil {
		return err
	}
	now := d.now()
	return d.tx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, `SELECT state FROM queue WHERE user = ?`, user).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotQueued, user)
		}
		if err != nil {
			return err
		}
		if State(cur) != from {
			return fmt.Errorf("%w: %s is %s, not %s", ErrStateChanged, user, cur, from)
		}
		var q string
		args := []any{to, unix(now), user}
		switch {
		case to == NeedsAttention:
			q = `UPDATE queue SET state = ?, state_since = ?, last_error = ?, attention_from = ?, attempts = attempts + 1 WHERE user = ?`
			args = []any{to, unix(now), reason, from, user}
		default:
			// The problem is over once the user moves on; the event log
			// keeps the history.
			q = `UPDATE queue SET state = ?, state_since = ?, attention_from = '', last_error = '' WHERE user = ?`
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO step_times (user, state, at) VALUES (?, ?, ?)
			ON CONFLICT (user, state) DO UPDATE SET at = excluded.at`, user, to, unix(now)); err != nil {
			return err
		}
		return addEvent(ctx, tx, now, user, "transition", from, to, actor, reason)
	})
}

// SetError records the last error of a step without changing the state
// (for a retryable failure) and counts the attempt.
func (d *DB) SetError(ctx context.Context, user, msg string) error {
	now := d.now()
	return d.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET last_error = ?, attempts = attempts + 1 WHERE user = ?`, msg, user)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrNotQueued, user)
		}
		return addEvent(ctx, tx, now, user, "error", "", "", "", msg)
	})
}

// Progress records what was copied for a user.
func (d *DB) Progress(ctx context.Context, user string, bytes, messages, folders int64, report string) error {
	_, err := d.sql.ExecContext(ctx, `UPDATE queue SET bytes = ?, messages = ?, folders = ?, report = ? WHERE user = ?`,
		bytes, messages, folders, report, user)
	if err != nil {
		return fmt.Errorf("state: progress %s: %w", user, err)
	}
	return nil
}

// RequestStop marks that old delivery must stop for user (a valid reply or
// `mailmig stop`). It reports false when the user had already asked or is
// done; the runner performs the cutover.
func (d *DB) RequestStop(ctx context.Context, user, actor, reason string) (bool, error) {
	now := d.now()
	changed := false
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var st string
		var stop bool
		err := tx.QueryRowContext(ctx, `SELECT state, stop_requested FROM queue WHERE user = ?`, user).Scan(&st, &stop)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotQueued, user)
		}
		if err != nil {
			return err
		}
		if stop || State(st) == Done {
			return addEvent(ctx, tx, now, user, "stop-ignored", State(st), "", actor, "already stopped or done: "+reason)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE queue SET stop_requested = 1, stop_reason = ? WHERE user = ?`, reason, user); err != nil {
			return err
		}
		changed = true
		return addEvent(ctx, tx, now, user, "stop-requested", State(st), "", actor, reason)
	})
	return changed, err
}

// Dequeue removes a user that has not started (queued or needs-attention
// before dual). It refuses users whose delivery was already switched.
func (d *DB) Dequeue(ctx context.Context, user, actor string) error {
	now := d.now()
	return d.tx(ctx, func(tx *sql.Tx) error {
		var st, att string
		err := tx.QueryRowContext(ctx, `SELECT state, attention_from FROM queue WHERE user = ?`, user).Scan(&st, &att)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotQueued, user)
		}
		if err != nil {
			return err
		}
		if State(st) != Queued && !(State(st) == NeedsAttention && State(att) == Queued) {
			return fmt.Errorf("state: %s is %s; only users that have not started can be removed", user, st)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE user = ?`, user); err != nil {
			return err
		}
		return addEvent(ctx, tx, now, user, "dequeued", State(st), "", actor, "")
	})
}

// Summary counts users per state and sums what was moved.
type Summary struct {
	Users    map[State]int
	Total    int
	Bytes    int64 // copied so far, all users
	Messages int64
	// DoneBytes and DoneSeconds measure finished copies: throughput is
	// DoneBytes/DoneSeconds.
	DoneBytes   int64
	DoneSeconds float64
	// PendingBytes is unknown before a user is copied; PendingUsers counts
	// users not yet past copying.
	PendingUsers int
}

// Summarize returns the queue's summary.
func (d *DB) Summarize(ctx context.Context) (*Summary, error) {
	entries, err := d.List(ctx)
	if err != nil {
		return nil, err
	}
	s := &Summary{Users: map[State]int{}}
	for _, e := range entries {
		s.Users[e.State]++
		s.Total++
		s.Bytes += e.Bytes
		s.Messages += e.Messages
		switch e.State {
		case Queued, Dual, Copying:
			s.PendingUsers++
		case NeedsAttention:
			if e.AttentionFrom == Queued || e.AttentionFrom == Dual || e.AttentionFrom == Copying {
				s.PendingUsers++
			}
		}
	}
	// Copy throughput from step times: copying → confirm.
	rows, err := d.sql.QueryContext(ctx, `SELECT q.bytes, c.at, f.at FROM queue q
		JOIN step_times c ON c.user = q.user AND c.state = 'copying'
		JOIN step_times f ON f.user = q.user AND f.state = 'confirm'
		WHERE f.at >= c.at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var b, c, f int64
		if err := rows.Scan(&b, &c, &f); err != nil {
			return nil, err
		}
		s.DoneBytes += b
		s.DoneSeconds += time.Duration(f - c).Seconds()
	}
	return s, rows.Err()
}
