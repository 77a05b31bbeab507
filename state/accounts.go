package state

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrNoAccount is returned for a user without a server account.
var ErrNoAccount = errors.New("state: no such account")

// ErrBadPassword is returned when a password does not match.
var ErrBadPassword = errors.New("state: wrong password")

// Account is a server account. The password is only ever kept as a hash.
type Account struct {
	User string
	// QuotaBytes and QuotaMessages override the site's limits; -1 means
	// "use the site default", 0 means "no limit".
	QuotaBytes    int64
	QuotaMessages int64
}

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns an argon2id hash in the PHC string format that
// dovecot's ARGON2ID scheme also uses.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword verifies password against an argon2id or bcrypt hash.
func CheckPassword(hash, password string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		parts := strings.Split(hash, "$")
		if len(parts) != 6 {
			return errors.New("state: malformed argon2id hash")
		}
		var v int
		var m uint32
		var t uint32
		var p uint8
		if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil {
			return errors.New("state: malformed argon2id hash")
		}
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
			return errors.New("state: malformed argon2id hash")
		}
		salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
		want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
		if err1 != nil || err2 != nil || len(want) == 0 {
			return errors.New("state: malformed argon2id hash")
		}
		got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return ErrBadPassword
		}
		return nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
			return ErrBadPassword
		}
		return nil
	}
	return errors.New("state: unknown password hash scheme")
}

// AddAccount creates an account. It fails if the user exists.
func (d *DB) AddAccount(ctx context.Context, user, password string, quotaBytes, quotaMessages int64) error {
	if password == "" {
		return errors.New("state: empty password")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := unix(d.now())
	_, err = d.sql.ExecContext(ctx, `INSERT INTO accounts (user, hash, quota_bytes, quota_messages, created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?)`,
		user, h, quotaBytes, quotaMessages, now, now)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("state: account %s already exists", user)
		}
		return fmt.Errorf("state: add account %s: %w", user, err)
	}
	return nil
}

// SetPassword changes an account's password.
func (d *DB) SetPassword(ctx context.Context, user, password string) error {
	if password == "" {
		return errors.New("state: empty password")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	res, err := d.sql.ExecContext(ctx, `UPDATE accounts SET hash = ?, changed_at = ? WHERE user = ?`, h, unix(d.now()), user)
	if err != nil {
		return fmt.Errorf("state: passwd %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	return nil
}

// SetQuota changes an account's quota override (-1 = site default).
func (d *DB) SetQuota(ctx context.Context, user string, quotaBytes, quotaMessages int64) error {
	res, err := d.sql.ExecContext(ctx, `UPDATE accounts SET quota_bytes = ?, quota_messages = ?, changed_at = ? WHERE user = ?`,
		quotaBytes, quotaMessages, unix(d.now()), user)
	if err != nil {
		return fmt.Errorf("state: quota %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	return nil
}

// DeleteAccount removes an account (not its mail).
func (d *DB) DeleteAccount(ctx context.Context, user string) error {
	res, err := d.sql.ExecContext(ctx, `DELETE FROM accounts WHERE user = ?`, user)
	if err != nil {
		return fmt.Errorf("state: delete account %s: %w", user, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	return nil
}

// Account returns one account.
func (d *DB) Account(ctx context.Context, user string) (*Account, error) {
	a := &Account{User: user}
	err := d.queryRow(ctx, `SELECT quota_bytes, quota_messages FROM accounts WHERE user = ?`, user).Scan(&a.QuotaBytes, &a.QuotaMessages)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	if err != nil {
		return nil, fmt.Errorf("state: account %s: %w", user, err)
	}
	return a, nil
}

// Accounts lists every account, by name.
func (d *DB) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT user, quota_bytes, quota_messages FROM accounts ORDER BY user`)
	if err != nil {
		return nil, fmt.Errorf("state: accounts: %w", err)
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		var a Account
		if err := rows.Scan(&a.User, &a.QuotaBytes, &a.QuotaMessages); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Authenticate checks user's password. It returns ErrNoAccount or
// ErrBadPassword; callers must not tell the client which.
func (d *DB) Authenticate(ctx context.Context, user, password string) error {
	var hash string
	err := d.sql.QueryRowContext(ctx, `SELECT hash FROM accounts WHERE user = ?`, user).Scan(&hash)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check, so timing does not tell
		// which user names exist.
		CheckPassword(dummyHash(), password)
		return fmt.Errorf("%w: %s", ErrNoAccount, user)
	}
	if err != nil {
		return fmt.Errorf("state: authenticate %s: %w", user, err)
	}
	return CheckPassword(hash, password)
}

// dummyHash is computed on first use, not at init: an argon2id hash costs
// ~90 ms and 20 MB, which every mailmig process (each `mailmig deliver`
// from the MTA) would otherwise pay at start.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("mailmig timing equaliser")
	return h
})
