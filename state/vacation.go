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

// VacationSeen reports whether user answered sender for handle (the
// vacation action's :handle, or a hash of its reason) within the last
// period (the action's :days).
func (d *DB) VacationSeen(ctx context.Context, user, sender, handle string, period time.Duration) (bool, error) {
	var at int64
	err := d.sql.QueryRowContext(ctx, `SELECT sent_at FROM vacation WHERE user = ? AND sender = ? AND handle = ?`, user, sender, handle).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: vacation %s: %w", user, err)
	}
	return d.now().Sub(fromUnix(at)) < period, nil
}

// VacationRecord remembers that user answered sender for handle now.
func (d *DB) VacationRecord(ctx context.Context, user, sender, handle string) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO vacation (user, sender, handle, sent_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user, sender, handle) DO UPDATE SET sent_at = excluded.sent_at`, user, sender, handle, unix(d.now()))
	if err != nil {
		return fmt.Errorf("state: vacation %s: %w", user, err)
	}
	return nil
}

// VacationClaim records that user answers sender for handle at at, unless
// a reply at or after since is recorded, in one statement: of deliveries
// in several processes, one claims the reply. It reports whether it
// recorded.
func (d *DB) VacationClaim(ctx context.Context, user, sender, handle string, since, at time.Time) (bool, error) {
	res, err := d.sql.ExecContext(ctx, `INSERT INTO vacation (user, sender, handle, sent_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user, sender, handle) DO UPDATE SET sent_at = excluded.sent_at WHERE vacation.sent_at <= ?`,
		user, sender, handle, unix(at), unix(since))
	if err != nil {
		return false, fmt.Errorf("state: vacation %s: %w", user, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("state: vacation %s: %w", user, err)
	}
	return n > 0, nil
}

// VacationUnclaim forgets the claim VacationClaim made at at (the reply
// was not sent).
func (d *DB) VacationUnclaim(ctx context.Context, user, sender, handle string, at time.Time) error {
	_, err := d.sql.ExecContext(ctx, `DELETE FROM vacation WHERE user = ? AND sender = ? AND handle = ? AND sent_at = ?`,
		user, sender, handle, unix(at))
	if err != nil {
		return fmt.Errorf("state: vacation %s: %w", user, err)
	}
	return nil
}

// Secret returns the site secret called name, creating a random one on
// first use (32 bytes, hex).
func (d *DB) Secret(ctx context.Context, name string) (string, error) {
	var v string
	err := d.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, "secret:"+name).Scan(&v)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		v = hex.EncodeToString(b)
		_, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, "secret:"+name, v)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("state: secret %s: %w", name, err)
	}
	return v, nil
}
