// Package state keeps mailmig's durable state in one SQLite database
// (modernc.org/sqlite, pure Go): the migration queue and its state machine,
// worker leases, an append-only event log, server accounts with password
// hashes, vacation memory and a few site secrets.
//
// Implementation notes:
//   - WAL mode with a busy timeout, and every write transaction starts
//     IMMEDIATE, so several processes (mailmig run workers, mailmig deliver
//     from the MTA, mailmig serve) share one file without "database is
//     locked" surprises and without lost updates.
//   - The schema is versioned (PRAGMA user_version). Opening an older
//     database applies the missing migrations in one transaction each; a
//     database written by a newer mailmig is refused.
//   - Every state change of a user is a transition checked against the
//     state machine in machine.go and recorded as an event in the same
//     transaction.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// DB is an open state database.
type DB struct {
	sql *sql.DB
	// stmts caches the prepared statements of the queries on the
	// delivery path (see stmt): modernc's sqlite parses a query again
	// for every unprepared call, a tenth of an LMTP delivery's CPU.
	stmts sync.Map // query → *sql.Stmt
	// Now is the clock; tests and the demo replace it.
	Now func() time.Time
}

// ErrNewerSchema is returned for a database written by a newer mailmig.
var ErrNewerSchema = errors.New("state: database schema is newer than this mailmig")

// Open opens (creating if needed) the database at path and brings its
// schema up to date.
func Open(path string) (*DB, error) {
	return openAt(path, len(migrations))
}

func openAt(path string, version int) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	d := &DB{sql: db, Now: time.Now}
	if err := d.migrate(context.Background(), version); err != nil {
		db.Close()
		return nil, fmt.Errorf("state: %s: %w", path, err)
	}
	return d, nil
}

// Close closes the database.
func (d *DB) Close() error {
	d.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return d.sql.Close()
}

// stmt returns query prepared once for the life of the DB.
func (d *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := d.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := d.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if v, loaded := d.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow is QueryRowContext through a prepared statement.
func (d *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.stmt(ctx, query)
	if err != nil {
		// A Row carrying the error: Scan returns it.
		return d.sql.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// SchemaVersion returns the schema version of the open database.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// LatestSchema is the schema version this mailmig writes.
func LatestSchema() int { return len(migrations) }

func (d *DB) migrate(ctx context.Context, target int) error {
	cur, err := d.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if cur > len(migrations) {
		return fmt.Errorf("%w: it is at version %d, this mailmig knows up to %d; upgrade mailmig", ErrNewerSchema, cur, len(migrations))
	}
	for v := cur; v < target; v++ {
		tx, err := d.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema migration to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// tx runs f in one write transaction.
func (d *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: begin: %w", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	return nil
}

func (d *DB) now() time.Time { return d.Now().UTC() }

// unix and fromUnix store times as Unix nanoseconds; 0 is "never".
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// migrations[i] brings the schema from version i to i+1. Never edit a
// released entry; append a new one.
var migrations = []string{
	// 1: the queue, its events, server accounts.
	`
CREATE TABLE queue (
	user          TEXT PRIMARY KEY,
	state         TEXT NOT NULL,
	copy_folders  INTEGER NOT NULL DEFAULT 0,
	deadline      INTEGER NOT NULL DEFAULT 0,
	requested_by  TEXT NOT NULL DEFAULT '',
	enqueued_at   INTEGER NOT NULL,
	state_since   INTEGER NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	lease_owner   TEXT NOT NULL DEFAULT '',
	lease_until   INTEGER NOT NULL DEFAULT 0,
	bytes         INTEGER NOT NULL DEFAULT 0,
	messages      INTEGER NOT NULL DEFAULT 0,
	folders       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE step_times (
	user  TEXT NOT NULL REFERENCES queue(user) ON DELETE CASCADE,
	state TEXT NOT NULL,
	at    INTEGER NOT NULL,
	PRIMARY KEY (user, state)
);
CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	user    TEXT NOT NULL,
	at      INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	from_state TEXT NOT NULL DEFAULT '',
	to_state   TEXT NOT NULL DEFAULT '',
	actor   TEXT NOT NULL DEFAULT '',
	detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_user ON events(user, id);
CREATE TABLE accounts (
	user        TEXT PRIMARY KEY,
	hash        TEXT NOT NULL,
	quota_bytes INTEGER NOT NULL DEFAULT -1,
	created_at  INTEGER NOT NULL,
	changed_at  INTEGER NOT NULL
);
`,
	// 2: per-user migration identity and language, the migration's own
	// timestamps, message-count quotas, vacation memory, site secrets.
	`
ALTER TABLE queue ADD COLUMN migration_id TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN language TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN attention_from TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN report TEXT NOT NULL DEFAULT '';
UPDATE queue SET migration_id = lower(hex(randomblob(12))) WHERE migration_id = '';
ALTER TABLE accounts ADD COLUMN quota_messages INTEGER NOT NULL DEFAULT -1;
CREATE TABLE vacation (
	user    TEXT NOT NULL,
	sender  TEXT NOT NULL,
	handle  TEXT NOT NULL,
	sent_at INTEGER NOT NULL,
	PRIMARY KEY (user, sender, handle)
);
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 3: counters shared by processes (mailmig deliver's deliveries,
	// which serve's metrics report).
	`
CREATE TABLE counters (
	name   TEXT NOT NULL,
	labels TEXT NOT NULL,
	value  INTEGER NOT NULL,
	PRIMARY KEY (name, labels)
) WITHOUT ROWID;
`,
}
