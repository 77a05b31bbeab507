// Package paths holds one user's locations on both sides of the migration
// (old INBOX, old folders, new Maildir, Sieve scripts), as the
// configuration's templates resolve them, and the error for a user the
// home source does not know. The migration and the commands share it; the
// configuration (cmd/mailmig/config) fills it in.
package paths

import "errors"

// ErrUnknownUser is returned when the configured home source does not know
// a user.
var ErrUnknownUser = errors.New("config: unknown user")

// User are one user's locations on both sides.
type User struct {
	User          string
	Home          string
	Inbox         string
	Folders       string
	Subscriptions string
	Maildir       string
	SieveDir      string
	SieveActive   string
}
