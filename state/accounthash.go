package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// PasswordHash returns an account's stored hash (argon2id, bcrypt, or a
// crypt(3) hash copied by `mailmig user import`), or ErrNoAccount. It
// spends no time on unknown users: server/auth equalises that itself.
func (d *DB) PasswordHash(ctx context.Context, user string) (string, error) {
	var hash string
	err := d.sql.QueryRowContext(ctx, `SELECT hash FROM accounts WHERE user = ?`, user).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	if err != nil {
		return "", fmt.Errorf("state: account %s: %w", user, err)
	}
	return hash, nil
}

// AddAccountHash creates an account with an existing hash (an import from
// a shadow file); the caller has checked the hash's scheme. It fails with
// ErrAccountExists if the user has an account.
func (d *DB) AddAccountHash(ctx context.Context, user, hash string) error {
	if hash == "" {
		return errors.New("state: empty hash")
	}
	now := unix(d.now())
	_, err := d.sql.ExecContext(ctx, `INSERT INTO accounts (user, hash, quota_bytes, quota_messages, created_at, changed_at) VALUES (?, ?, -1, -1, ?, ?)`,
		user, hash, now, now)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("%w: %s", ErrAccountExists, user)
		}
		return fmt.Errorf("state: add account %s: %w", user, err)
	}
	return nil
}

// ErrAccountExists is returned by AddAccountHash for an existing account.
var ErrAccountExists = errors.New("state: account already exists")

// DummyCheck spends what checking a password against an argon2id hash
// costs, so an unknown user takes as long as a wrong password.
func DummyCheck(password string) {
	CheckPassword(dummyHash(), password)
}

// LockAccount locks (a "!" before the hash, as passwd -l does) or
// unlocks an account; a locked account never authenticates.
func (d *DB) LockAccount(ctx context.Context, user string, lock bool) error {
	q := `UPDATE accounts SET hash = '!' || hash, changed_at = ? WHERE user = ? AND hash NOT LIKE '!%'`
	if !lock {
		q = `UPDATE accounts SET hash = substr(hash, 2), changed_at = ? WHERE user = ? AND hash LIKE '!%'`
	}
	res, err := d.sql.ExecContext(ctx, q, unix(d.now()), user)
	if err != nil {
		return fmt.Errorf("state: lock %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := d.PasswordHash(ctx, user); err != nil {
			return err
		}
	}
	return nil
}
