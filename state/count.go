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

// AddCounter adds n to the counter name with labels (a fixed string such
// as "outcome=delivered"). Counters outlive processes: `mailmig deliver`
// runs once per message, and serve's metrics read what it counted.
func (d *DB) AddCounter(ctx context.Context, name, labels string, n int64) error {
	st, err := d.stmt(ctx, `INSERT INTO counters (name, labels, value) VALUES (?, ?, ?)
		ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value`)
	if err != nil {
		return fmt.Errorf("state: counter %s: %w", name, err)
	}
	if _, err := st.ExecContext(ctx, name, labels, n); err != nil {
		return fmt.Errorf("state: counter %s: %w", name, err)
	}
	return nil
}

// Counters returns the values of counter name by labels.
func (d *DB) Counters(ctx context.Context, name string) (map[string]int64, error) {
	rows, err := d.sql.QueryContext(ctx, `SELECT labels, value FROM counters WHERE name = ?`, name)
	if err != nil {
		return nil, fmt.Errorf("state: counters %s: %w", name, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var l string
		var v int64
		if err := rows.Scan(&l, &v); err != nil {
			return nil, err
		}
		out[l] = v
	}
	return out, rows.Err()
}
