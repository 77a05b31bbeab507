package state

import (
	"context"
	"fmt"
)

// CountEvents returns how many events of kind the log holds (the metrics
// report the runner's errors this way).
func (d *DB) CountEvents(ctx context.Context, kind string) (int64, error) {
	var n int64
	if err := d.queryRow(ctx, `SELECT COUNT(*) FROM events WHERE kind = ?`, kind).Scan(&n); err != nil {
		return 0, fmt.Errorf("state: count %s events: %w", kind, err)
	}
	return n, nil
}
