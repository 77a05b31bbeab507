package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLeased is returned when another worker holds a live lease on a user.
var ErrLeased = errors.New("state: user is leased by another worker")

// active are the states a worker has something to do in.
const activeStates = `('queued','dual','copying','confirm','cutover')`

// Lease takes the lease on user for worker until now+ttl. It succeeds when
// the user is not leased, the lease has expired (a crashed worker), or
// worker already holds it.
func (d *DB) Lease(ctx context.Context, user, worker string, ttl time.Duration) error {
	now := d.now()
	return d.tx(ctx, func(tx *sql.Tx) error {
		var owner string
		var until int64
		err := tx.QueryRowContext(ctx, `SELECT lease_owner, lease_until FROM queue WHERE user = ?`, user).Scan(&owner, &until)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrNotQueued, user)
		}
		if err != nil {
			return err
		}
		if owner != "" && owner != worker && until > unix(now) {
			return fmt.Errorf("%w: %s held by %s until %s", ErrLeased, user, owner, fromUnix(until).Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE queue SET lease_owner = ?, lease_until = ? WHERE user = ?`, worker, unix(now.Add(ttl)), user); err != nil {
			return err
		}
		if owner != "" && owner != worker {
			return addEvent(ctx, tx, now, user, "lease-takeover", "", "", worker, "expired lease of "+owner)
		}
		return nil
	})
}

// LeaseNext leases the next user with work to do whose lease is free or
// expired, oldest enqueue first. It returns "" when there is none. ready
// filters users by state (nil: every active state).
func (d *DB) LeaseNext(ctx context.Context, worker string, ttl time.Duration) (string, error) {
	now := d.now()
	var user string
	err := d.tx(ctx, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT user, lease_owner FROM queue
			WHERE state IN `+activeStates+` AND (lease_owner = '' OR lease_until <= ? OR lease_owner = ?)
			ORDER BY enqueued_at, user LIMIT 1`, unix(now), worker).Scan(&user, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE queue SET lease_owner = ?, lease_until = ? WHERE user = ?`, worker, unix(now.Add(ttl)), user); err != nil {
			return err
		}
		if owner != "" && owner != worker {
			return addEvent(ctx, tx, now, user, "lease-takeover", "", "", worker, "expired lease of "+owner)
		}
		return nil
	})
	return user, err
}

// Renew extends worker's lease on user. It fails with ErrLeased when the
// lease was lost (it expired and another worker took it).
func (d *DB) Renew(ctx context.Context, user, worker string, ttl time.Duration) error {
	now := d.now()
	res, err := d.sql.ExecContext(ctx, `UPDATE queue SET lease_until = ? WHERE user = ? AND lease_owner = ?`, unix(now.Add(ttl)), user, worker)
	if err != nil {
		return fmt.Errorf("state: renew %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s lost by %s", ErrLeased, user, worker)
	}
	return nil
}

// Release gives up worker's lease on user.
func (d *DB) Release(ctx context.Context, user, worker string) error {
	_, err := d.sql.ExecContext(ctx, `UPDATE queue SET lease_owner = '', lease_until = 0 WHERE user = ? AND lease_owner = ?`, user, worker)
	if err != nil {
		return fmt.Errorf("state: release %s: %w", user, err)
	}
	return nil
}
