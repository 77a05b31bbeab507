package outbound

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Spool layout under Queue.Dir:
//
//	tmp/            files being written; never read by the runner
//	queue/ID.eml    the message, exactly as it will be sent
//	queue/ID.json   the envelope and delivery state (the commit point)
//
// A message is queued once its .json is renamed into queue/. A .eml
// without a .json is an interrupted Send and is removed after a grace
// period; a .json without a .eml is a corrupt entry, logged and skipped.

// item is the persisted envelope and delivery state of one message.
type item struct {
	ID   string `json:"id"`
	From string `json:"from"` // "" for a bounce (null reverse-path)
	// Pending are the recipients still to be delivered.
	Pending []string `json:"pending"`
	// Failed are recipients refused for good and not yet reported.
	Failed      []failure `json:"failed,omitempty"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	// Last is the most recent temporary failure, reported in the bounce
	// when the retry window closes.
	Last *failure `json:"last,omitempty"`
}

// failure records which server refused a recipient and why.
type failure struct {
	Rcpt string `json:"rcpt,omitempty"`
	// Remote is the server that answered ("" if none could be reached).
	Remote string `json:"remote,omitempty"`
	// Code and Enhanced are the SMTP reply (0 and "" for network errors).
	Code     int    `json:"code,omitempty"`
	Enhanced string `json:"enhanced,omitempty"`
	// Text is the server's reply text or the network error.
	Text string    `json:"text"`
	At   time.Time `json:"at"`
	// Expired is set when the retry window closed on a temporary failure.
	Expired bool `json:"expired,omitempty"`
}

// permanent reports whether the failure is a 5xx refusal.
func (f failure) permanent() bool { return f.Code >= 500 && f.Code < 600 }

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d.%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

func (q *Queue) tmpDir() string   { return filepath.Join(q.Dir, "tmp") }
func (q *Queue) queueDir() string { return filepath.Join(q.Dir, "queue") }

func (q *Queue) msgPath(id string) string  { return filepath.Join(q.queueDir(), id+".eml") }
func (q *Queue) metaPath(id string) string { return filepath.Join(q.queueDir(), id+".json") }

// ensureDirs creates the spool directories.
func (q *Queue) ensureDirs() error {
	for _, d := range []string{q.tmpDir(), q.queueDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("outbound: create spool directory %s: %w", d, err)
		}
	}
	return nil
}

// writeTemp writes r to a new file in tmp/ and fsyncs it.
func (q *Queue) writeTemp(r io.Reader) (tmp string, n int64, err error) {
	f, err := os.CreateTemp(q.tmpDir(), "w-*")
	if err != nil {
		return "", 0, fmt.Errorf("outbound: create temporary file in %s: %w", q.tmpDir(), err)
	}
	tmp = f.Name()
	n, err = io.Copy(f, r)
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return "", n, fmt.Errorf("outbound: write %s at byte %d: %w", tmp, n, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", n, fmt.Errorf("outbound: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", n, fmt.Errorf("outbound: close %s: %w", tmp, err)
	}
	return tmp, n, nil
}

// writeFileSync writes data through a temporary file, fsyncs it and renames
// it to dst, so dst is either absent, the old content or the new content.
func (q *Queue) writeFileSync(dst string, r io.Reader) (int64, error) {
	tmp, n, err := q.writeTemp(r)
	if err != nil {
		return n, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("outbound: rename %s to %s: %w", tmp, dst, err)
	}
	return n, nil
}

// commitNew writes a new entry: message and envelope are written and
// fsynced side by side (most file systems then need one journal commit
// for both), renamed into queue/ message first, and the directory fsynced.
func (q *Queue) commitNew(it *item, msg io.Reader) (int64, error) {
	meta, err := json.MarshalIndent(it, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("outbound: encode %s: %w", it.ID, err)
	}
	var (
		wg      sync.WaitGroup
		metaTmp string
		metaErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		metaTmp, _, metaErr = q.writeTemp(bytes.NewReader(append(meta, '\n')))
	}()
	msgTmp, n, err := q.writeTemp(msg)
	wg.Wait()
	if err != nil || metaErr != nil {
		for _, p := range []string{msgTmp, metaTmp} {
			if p != "" {
				os.Remove(p)
			}
		}
		return n, errors.Join(err, metaErr)
	}
	if err := os.Rename(msgTmp, q.msgPath(it.ID)); err != nil {
		os.Remove(msgTmp)
		os.Remove(metaTmp)
		return n, fmt.Errorf("outbound: rename %s: %w", msgTmp, err)
	}
	if err := os.Rename(metaTmp, q.metaPath(it.ID)); err != nil {
		os.Remove(metaTmp)
		os.Remove(q.msgPath(it.ID))
		return n, fmt.Errorf("outbound: rename %s: %w", metaTmp, err)
	}
	return n, syncDir(q.queueDir())
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("outbound: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("outbound: fsync directory %s: %w", dir, err)
	}
	return nil
}

func (q *Queue) saveMeta(it *item) error {
	// Deleted by the postmaster (Delete) while an attempt ran: do not
	// bring the envelope back without its message.
	if _, err := os.Stat(q.msgPath(it.ID)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s (deleted)", ErrNoEntry, it.ID)
	}
	b, err := json.MarshalIndent(it, "", "  ")
	if err != nil {
		return fmt.Errorf("outbound: encode %s: %w", it.ID, err)
	}
	if _, err := q.writeFileSync(q.metaPath(it.ID), strings.NewReader(string(b)+"\n")); err != nil {
		return err
	}
	return syncDir(q.queueDir())
}

func (q *Queue) loadMeta(id string) (*item, error) {
	p := q.metaPath(id)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("outbound: read %s: %w", p, err)
	}
	var it item
	if err := json.Unmarshal(b, &it); err != nil {
		return nil, fmt.Errorf("outbound: decode %s: %w", p, err)
	}
	if it.ID != id {
		return nil, fmt.Errorf("outbound: %s holds id %q", p, it.ID)
	}
	return &it, nil
}

// remove deletes a finished entry: the .json first, so a crash in between
// leaves an orphan message file, never an entry without its message.
func (q *Queue) remove(id string) error {
	if err := os.Remove(q.metaPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbound: remove %s: %w", q.metaPath(id), err)
	}
	if err := os.Remove(q.msgPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbound: remove %s: %w", q.msgPath(id), err)
	}
	return nil
}

// listIDs returns the ids of committed entries and of orphan message files.
func (q *Queue) listIDs() (ids, orphans []string, err error) {
	ents, err := os.ReadDir(q.queueDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("outbound: list %s: %w", q.queueDir(), err)
	}
	metas := map[string]bool{}
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			metas[id] = true
			ids = append(ids, id)
		}
	}
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".eml"); ok && !metas[id] {
			orphans = append(orphans, id)
		}
	}
	return ids, orphans, nil
}
