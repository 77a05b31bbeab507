package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Event is one row of the append-only event log.
type Event struct {
	ID     int64
	User   string
	At     time.Time
	Kind   string
	From   State
	To     State
	Actor  string
	Detail string
}

func addEvent(ctx context.Context, tx *sql.Tx, at time.Time, user, kind string, from, to State, actor, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (user, at, kind, from_state, to_state, actor, detail) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		user, unix(at), kind, from, to, actor, detail)
	return err
}

// Log appends an event for user that is not a state change (a mail sent, a
// forged reply, a delivery problem).
func (d *DB) Log(ctx context.Context, user, kind, actor, detail string) error {
	now := d.now()
	err := d.tx(ctx, func(tx *sql.Tx) error { return addEvent(ctx, tx, now, user, kind, "", "", actor, detail) })
	if err != nil {
		return fmt.Errorf("state: log event for %s: %w", user, err)
	}
	return nil
}

// Events returns user's events, oldest first ("" = every user).
func (d *DB) Events(ctx context.Context, user string) ([]Event, error) {
	q := `SELECT id, user, at, kind, from_state, to_state, actor, detail FROM events`
	var args []any
	if user != "" {
		q += ` WHERE user = ?`
		args = append(args, user)
	}
	rows, err := d.sql.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("state: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at int64
		var from, to string
		if err := rows.Scan(&e.ID, &e.User, &at, &e.Kind, &from, &to, &e.Actor, &e.Detail); err != nil {
			return nil, err
		}
		e.At, e.From, e.To = fromUnix(at), State(from), State(to)
		out = append(out, e)
	}
	return out, rows.Err()
}
