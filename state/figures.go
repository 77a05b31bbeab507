package state

import (
	"context"
	"fmt"
)

// CopyProgress records how far a running copy has got (bytes and
// messages written so far), so that `mailmig status` shows a copy under
// way instead of 0 B. The copy's end overwrites it with Progress.
func (d *DB) CopyProgress(ctx context.Context, user string, bytes, messages int64) error {
	_, err := d.sql.ExecContext(ctx, `UPDATE queue SET bytes = ?, messages = ? WHERE user = ? AND state = ?`,
		bytes, messages, user, Copying)
	if err != nil {
		return fmt.Errorf("state: copy progress %s: %w", user, err)
	}
	return nil
}

// AddCarried adds what the cutover's incremental pass copied to the
// user's figures: the messages that reached the old side after the copy
// and folders the copy did not have. A repeated pass copies nothing and
// adds nothing.
func (d *DB) AddCarried(ctx context.Context, user string, bytes, messages, folders int64) error {
	_, err := d.sql.ExecContext(ctx, `UPDATE queue SET bytes = bytes + ?, messages = messages + ?, folders = folders + ? WHERE user = ?`,
		bytes, messages, folders, user)
	if err != nil {
		return fmt.Errorf("state: carried over %s: %w", user, err)
	}
	return nil
}
